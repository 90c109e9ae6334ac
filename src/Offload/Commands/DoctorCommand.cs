using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Offload.Agent.Tools;
using Offload.Config;
using Offload.Daemon;

namespace Offload.Cli.Commands;

/// <summary>
/// Checks what Offload depends on and says what to do about each problem: the sandbox, git, the
/// daemon and its socket folder, the claude CLI, the Anthropic key (whether it is set, never its value).
/// </summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var json = Common.JsonOption();
        var command = new Command("doctor", "Check the sandbox, git, the daemon, the claude CLI and API keys; say how to fix what is missing") { json };
        command.SetAction(async (parse, ct) =>
        {
            var paths = OffloadPaths.FromEnvironment();
            var checks = new List<DoctorCheck> { CheckSandbox(), await CheckGitAsync(ct), await CheckDaemonAsync(paths, ct), CheckSocketDir(paths), CheckConfig(paths), CheckClaude(paths), CheckCodex(paths) };
            checks.Add(Environment.GetEnvironmentVariable("ANTHROPIC_API_KEY") is { Length: > 0 }
                ? new DoctorCheck("anthropic-key", "ok", "ANTHROPIC_API_KEY is set")
                : new DoctorCheck("anthropic-key", "info", "ANTHROPIC_API_KEY is not set: anthropic: models need it (other providers and sim: models do not)",
                    "export ANTHROPIC_API_KEY=… in the shell that starts the daemon"));
            var healthy = checks.All(c => c.Status != "fail");
            if (parse.GetValue(json))
            {
                Output.Json(new DoctorReport(healthy, checks));
            }
            else
            {
                foreach (var check in checks)
                {
                    var mark = check.Status switch { "ok" => Output.Paint("ok  ", "32"), "fail" => Output.Paint("FAIL", "31"), "warn" => Output.Paint("warn", "33"), _ => Output.Paint("info", "2") };
                    Console.Out.WriteLine($"{mark}  {check.Name,-14} {check.Detail}");
                    if (check.Hint is not null)
                    {
                        Console.Out.WriteLine($"      {"",-14} next: {check.Hint}");
                    }
                }
            }

            return healthy ? ExitCodes.Ok : ExitCodes.Error;
        });
        return command;
    }

    private static DoctorCheck CheckSandbox()
    {
        var probe = Sandbox.Probe(Environment.GetEnvironmentVariable);
        return probe.Works
            ? new DoctorCheck("sandbox", "ok", $"{probe.Version ?? "bubblewrap"} at {probe.Path}: shell commands run sandboxed")
            : probe.Path is null
                ? new DoctorCheck("sandbox", "warn", "bubblewrap (bwrap) is not installed: the agent's shell commands run without a sandbox, so each one asks first", Sandbox.InstallHint)
                : new DoctorCheck("sandbox", "warn", probe.Problem!, "see docs/sandbox.md");
    }

    private static async Task<DoctorCheck> CheckGitAsync(CancellationToken cancellationToken)
    {
        var (exit, output) = await RunAsync("git", ["--version"], cancellationToken);
        return exit == 0
            ? new DoctorCheck("git", "ok", output)
            : new DoctorCheck("git", "fail", "git is not installed or does not run: Offload keeps every task in a git worktree", "sudo apt-get install git");
    }

    private static async Task<DoctorCheck> CheckDaemonAsync(OffloadPaths paths, CancellationToken cancellationToken)
    {
        using var client = new DaemonClient(paths);
        try
        {
            return await client.TryStatusAsync(cancellationToken) is { } s
                ? new DoctorCheck("daemon", s.Sandbox ? "ok" : "warn", $"running: pid {s.Pid}, version {s.Version}, sandbox {(s.Sandbox ? "on" : "off")}, {s.Running} tasks running")
                : new DoctorCheck("daemon", "info", $"not running (socket {paths.Socket}); any offload command starts it");
        }
        catch (CliException e)
        {
            return new DoctorCheck("daemon", "fail", e.Message, e.Hint);
        }
    }

    private static DoctorCheck CheckSocketDir(OffloadPaths paths)
    {
        if (!Directory.Exists(paths.RuntimeDir))
        {
            return new DoctorCheck("socket-dir", "info", $"{paths.RuntimeDir} does not exist yet; the daemon creates it (mode 0700)");
        }

        var problems = new List<string>();
        var dirMode = File.GetUnixFileMode(paths.RuntimeDir);
        if ((dirMode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
        {
            problems.Add($"{paths.RuntimeDir} is {Octal(dirMode)}, not 0700");
        }

        if (File.Exists(paths.Socket) && File.GetUnixFileMode(paths.Socket) is var socketMode
            && (socketMode & ~(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute)) != 0)
        {
            problems.Add($"{paths.Socket} is {Octal(socketMode)}, not 0600");
        }

        if (OwnerOf(paths.RuntimeDir) is { } owner && owner != OwnerOnlyConnections.CurrentUid)
        {
            problems.Add($"{paths.RuntimeDir} belongs to uid {owner}, not to you (uid {OwnerOnlyConnections.CurrentUid})");
        }

        return problems.Count == 0
            ? new DoctorCheck("socket-dir", "ok", $"{paths.RuntimeDir} is 0700 and yours; the daemon also refuses other users by uid")
            : new DoctorCheck("socket-dir", "fail", string.Join("; ", problems), $"chmod 700 {paths.RuntimeDir}, then `offload daemon stop` (the next command restarts it with a 0600 socket)");
    }

    private static DoctorCheck CheckConfig(OffloadPaths paths)
    {
        try
        {
            OffloadConfig.Load(paths.ConfigFile);
            return new DoctorCheck("config", "ok", File.Exists(paths.ConfigFile) ? $"{paths.ConfigFile} is valid" : $"no config file ({paths.ConfigFile}): the defaults apply");
        }
        catch (ConfigException e)
        {
            return new DoctorCheck("config", "fail", e.Message, e.Hint);
        }
    }

    private static DoctorCheck CheckClaude(OffloadPaths paths) =>
        CheckAgentCli(paths, "claude", "Claude Code", "npm install -g @anthropic-ai/claude-code");

    private static DoctorCheck CheckCodex(OffloadPaths paths) =>
        CheckAgentCli(paths, "codex", "Codex", "npm install -g @openai/codex");

    /// <summary>An engine that runs another agent's CLI (<c>claude</c>, <c>codex</c>): where it is, and whether it runs sandboxed.</summary>
    private static DoctorCheck CheckAgentCli(OffloadPaths paths, string name, string agent, string install)
    {
        var configured = ConfiguredEnginePath(paths.ConfigFile, name);
        var found = configured is not null
            ? (File.Exists(configured) ? configured : null)
            : DaemonProgram.FindOnPath(name);
        var sandboxed = Sandbox.Probe(Environment.GetEnvironmentVariable).Works;
        return found is not null
            ? new DoctorCheck(name, sandboxed ? "ok" : "warn",
                $"{name} CLI at {found}{(configured is null ? " (from PATH)" : $" (engines.{name}.path)")}: --engine {name} can run, "
                + (sandboxed ? "inside bubblewrap (no network but the model)" : $"but without a sandbox: bubblewrap does not work here, so {agent} and its commands run unconfined by Offload"),
                sandboxed ? null : Sandbox.InstallHint)
            : new DoctorCheck(name, "info", configured is not null
                    ? $"engines.{name}.path is {configured}, which does not exist: --engine {name} cannot run"
                    : $"the {name} CLI is not on PATH: --engine {name} cannot run (the builtin engine does not need it)",
                $"{install}, or set engines.{name}.path in " + paths.ConfigFile);
    }

    /// <summary><c>engines.NAME.path</c> from the user's config, read as plain JSON so a config this check does not know about still works.</summary>
    private static string? ConfiguredEnginePath(string configFile, string name)
    {
        try
        {
            using var config = JsonDocument.Parse(File.ReadAllText(configFile), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return config.RootElement.TryGetProperty("engines", out var engines) && engines.TryGetProperty(name, out var engine)
                   && engine.TryGetProperty("path", out var path) && path.ValueKind == JsonValueKind.String
                ? path.GetString()
                : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or InvalidOperationException)
        {
            return null;
        }
    }

    private static uint? OwnerOf(string path)
    {
        var (exit, output) = RunAsync("stat", ["-c", "%u", path], CancellationToken.None).GetAwaiter().GetResult();
        return exit == 0 && uint.TryParse(output, CultureInfo.InvariantCulture, out var uid) ? uid : null;
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, string[] args, CancellationToken cancellationToken)
    {
        try
        {
            var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            return (process.ExitCode, output.Trim());
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (-1, "");
        }
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}

/// <param name="Status">ok, info (nothing wrong, worth knowing), warn (works, less safely), fail (broken: the exit code is 1).</param>
public sealed record DoctorCheck(string Name, string Status, string Detail, string? Hint = null);

/// <summary><c>offload doctor --json</c>.</summary>
public sealed record DoctorReport(bool Ok, IReadOnlyList<DoctorCheck> Checks);
