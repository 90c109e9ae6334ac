using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Offload.Agent.Tools;

/// <summary>
/// Runs a shell command in the worktree. The command gets its own session and process group
/// (through <c>setsid</c>), so a timeout or a cancellation kills everything it started, not just
/// the shell. With a <see cref="ToolContext.Sandbox"/> policy the command runs under bubblewrap
/// (see <see cref="Sandbox"/>). Output is captured in bounded memory; a long output is cut for the
/// model and kept whole in a spill file.
/// </summary>
public sealed class BashTool : ITool
{
    public static readonly TimeSpan FallbackTimeout = TimeSpan.FromMinutes(2);
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(10);

    /// <summary>How long a cancelled or timed-out command gets between SIGTERM and SIGKILL.</summary>
    private static readonly TimeSpan TermGrace = TimeSpan.FromSeconds(1);

    /// <summary>How long background processes may keep the output open after the shell has exited.</summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(2);

    private const int SigTerm = 15;
    private const int SigKill = 9;

    private static readonly string? SetsidPath = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    public string Name => "Bash";

    public string Description =>
        "Run a bash command in the worktree and get its combined stdout and stderr and its exit code. " +
        "stdin is empty, so commands must not wait for input. timeout is in milliseconds " +
        $"(default {FallbackTimeout.TotalMinutes:0} minutes unless configured, at most {MaxTimeout.TotalMinutes:0}); on timeout every process the command started is killed. " +
        "Long output is cut in the middle; the full output is saved to a file named in the result. " +
        "Prefer Read, Edit, Write, Glob and Grep over cat, sed, find and grep.";

    public JsonElement InputSchema { get; } = ToolInput.Schema("""
        {
          "type": "object",
          "properties": {
            "command": { "type": "string", "description": "The command line, run with /bin/bash -c in the worktree." },
            "timeout": { "type": "number", "description": "Timeout in milliseconds, at most 600000." },
            "description": { "type": "string", "description": "Five to ten words on what the command does, for the log." }
          },
          "required": ["command"],
          "additionalProperties": false
        }
        """);

    public bool Mutates => true;

    public async Task<ToolResult> InvokeAsync(JsonElement input, ToolContext context, CancellationToken cancellationToken = default)
    {
        string command;
        TimeSpan timeout;
        try
        {
            command = ToolInput.RequireString(input, "command");
            var timeoutMs = ToolInput.OptionalInteger(input, "timeout");
            if (timeoutMs is <= 0)
            {
                throw new ToolException("`timeout` must be a positive number of milliseconds.");
            }
            timeout = timeoutMs is { } ms ? TimeSpan.FromMilliseconds(Math.Min(ms, (long)MaxTimeout.TotalMilliseconds)) : context.DefaultBashTimeout ?? FallbackTimeout;
            if (timeout > MaxTimeout)
            {
                timeout = MaxTimeout;
            }
            if (string.IsNullOrWhiteSpace(command))
            {
                throw new ToolException("`command` is empty.");
            }
            if (!Directory.Exists(context.WorkDir))
            {
                throw new ToolException($"The worktree {context.WorkDir} does not exist.");
            }
            if (SetsidPath is null)
            {
                throw new ToolException("Bash is unavailable: setsid (util-linux) was not found, and commands cannot be run without their own process group.");
            }
        }
        catch (ToolException e)
        {
            return ToolResult.Error(e.Message);
        }

        // Limits are set before bwrap starts: the launcher joins the command's cgroup, then execs setsid.
        await using var limits = context.Limits is { } settings
            ? CommandLimits.Create(settings, [context.WorkDir, .. context.Sandbox?.GitWritableDirs ?? []], SizeAfterLastCommand.GetValueOrDefault(context.WorkDir))
            : null;
        var launcher = limits?.Launcher ?? [];
        var startInfo = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : SetsidPath)
        {
            WorkingDirectory = context.WorkDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (launcher.Count > 0)
        {
            foreach (var argument in launcher.Skip(1))
            {
                startInfo.ArgumentList.Add(argument);
            }
            startInfo.ArgumentList.Add(SetsidPath);
        }
        if (context.Sandbox is { } sandbox)
        {
            // bwrap runs as the group leader; its pid namespace dies with it, so the kill below reaches every process inside.
            startInfo.ArgumentList.Add(Sandbox.BwrapPath ?? "bwrap");
            var home = context.Environment is { } env ? env.GetValueOrDefault("HOME") : System.Environment.GetEnvironmentVariable("HOME");
            foreach (var argument in Sandbox.Arguments(sandbox, home))
            {
                startInfo.ArgumentList.Add(argument);
            }
            startInfo.ArgumentList.Add("--");
        }
        startInfo.ArgumentList.Add("/bin/bash");
        startInfo.ArgumentList.Add("-c");
        // The first line runs before the command is parsed: stdin from /dev/null, stderr into the stdout pipe.
        startInfo.ArgumentList.Add(limits?.Ulimits + "exec </dev/null 2>&1\n" + command);
        if (context.Environment is { } environment)
        {
            startInfo.Environment.Clear();
            foreach (var (key, value) in environment)
            {
                startInfo.Environment[key] = value;
            }
        }

        await using var capture = new OutputCapture(context.SpillDir, context.MaxOutputChars);
        using var process = new Process { StartInfo = startInfo };
        try
        {
            if (context.Sandbox is null)
            {
                process.Start();
            }
            else
            {
                await SandboxLauncher.StartAsync(process).ConfigureAwait(false);
            }
        }
        catch (Win32Exception e)
        {
            return ToolResult.Error($"Could not start the command: {e.Message}");
        }
        // setsid runs in the child we started (it is not a group leader), so its pid is the new group's id.
        var group = process.Id;
        limits?.Watch();
        process.StandardInput.Close();
        var readers = Task.WhenAll(PumpAsync(process.StandardOutput.BaseStream, capture), PumpAsync(process.StandardError.BaseStream, capture));

        using var timeoutSource = new CancellationTokenSource(timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token, limits?.Breached ?? CancellationToken.None);
        var timedOut = false;
        var lingerersKilled = false;
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            try
            {
                await readers.WaitAsync(DrainGrace, linked.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                lingerersKilled = true;
                Signal(process, group, SigKill);
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            await KillTreeAsync(process, group).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                await AdoptObjectsAsync(context).ConfigureAwait(false);
                await FinishAsync(context, limits).ConfigureAwait(false);
            }
            cancellationToken.ThrowIfCancellationRequested();
            timedOut = limits?.Breached.IsCancellationRequested != true;
        }
        await WaitQuietlyAsync(readers, DrainGrace).ConfigureAwait(false);
        await AdoptObjectsAsync(context).ConfigureAwait(false);
        var cleared = await FinishAsync(context, limits).ConfigureAwait(false);

        int? exitCode = timedOut || !process.HasExited ? null : process.ExitCode;
        var notes = new List<string>();
        if (limits?.Reason is { } reason)
        {
            notes.Add(reason);
        }
        if (timedOut)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"Command timed out after {(long)timeout.TotalMilliseconds} ms; the process tree was killed."));
        }
        if (lingerersKilled)
        {
            notes.Add($"Background processes still held the output open {DrainGrace.TotalSeconds:0} s after the command exited; they were killed. Redirect the output of long-running background processes to a file.");
        }
        if (exitCode is not null and not 0)
        {
            notes.Add($"Exit code {exitCode}");
        }
        if (cleared.Count > 0)
        {
            notes.Add($"Cleared the setuid/setgid bit of {string.Join(", ", cleared.Take(20))}{(cleared.Count > 20 ? $" and {cleared.Count - 20} more" : "")}: files in the worktree may not carry them.");
        }
        var footer = notes.Count == 0 ? "" : "\n" + string.Join("\n", notes);
        var (text, cut) = await capture.RenderAsync(Math.Max(context.MaxOutputChars - footer.Length, 0)).ConfigureAwait(false);
        var output = text.Length == 0 && footer.Length == 0 ? "(no output)" : text.TrimEnd('\n') + footer;
        if (output.Length > context.MaxOutputChars)
        {
            output = output[..context.MaxOutputChars];
        }
        return new ToolResult(output, IsError: timedOut || exitCode != 0 || limits?.Reason is not null, ExitCode: exitCode, Truncated: cut, FullOutputPath: cut ? capture.SpillPath : null);
    }

    /// <summary>The worktree's size after the last command, per worktree: the disk limit counts what a command adds past it.</summary>
    private static readonly ConcurrentDictionary<string, long> SizeAfterLastCommand = new(StringComparer.Ordinal);

    /// <summary>After every command, whatever ended it: the last limit checks, setuid and setgid bits cleared (<see cref="WorktreeScan"/>).</summary>
    private static async Task<IReadOnlyList<string>> FinishAsync(ToolContext context, CommandLimits? limits)
    {
        if (limits is null)
        {
            return WorktreeScan.ClearSetIdAndMeasure(context.WorkDir).Cleared;
        }

        var (size, cleared) = await limits.FinishAsync().ConfigureAwait(false);
        SizeAfterLastCommand[context.WorkDir] = size;
        return cleared;
    }

    /// <summary>Objects git wrote in the sandbox go to a quarantine; the repository gets them once checked, cancelled or not.</summary>
    private static Task AdoptObjectsAsync(ToolContext context) =>
        context.Sandbox is { } sandbox ? SandboxObjects.AdoptAsync(sandbox, CancellationToken.None) : Task.CompletedTask;

    private static async Task PumpAsync(Stream stream, OutputCapture capture)
    {
        var buffer = new byte[1 << 16];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await capture.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process was disposed while a process that escaped its group still held the pipe.
        }
    }

    /// <summary>SIGTERM to the group, a short grace for the shell to exit, then SIGKILL to whatever is left of the group.</summary>
    private static async Task KillTreeAsync(Process process, int group)
    {
        Signal(process, group, SigTerm);
        await WaitQuietlyAsync(process.WaitForExitAsync(), TermGrace).ConfigureAwait(false);
        Signal(process, group, SigKill);
        await WaitQuietlyAsync(process.WaitForExitAsync(), TermGrace).ConfigureAwait(false);
    }

    private static async Task WaitQuietlyAsync(Task task, TimeSpan limit)
    {
        try
        {
            await task.WaitAsync(limit).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    /// <summary>
    /// Signals the whole group, and the leader itself while it lives, in case setsid has not run yet.
    /// The group id stays reserved while any member lives; the leader's pid alone could be reused once it is reaped.
    /// </summary>
    private static void Signal(Process process, int group, int signal)
    {
        _ = kill(-group, signal);
        if (!process.HasExited)
        {
            _ = kill(group, signal);
        }
    }

    // DllImport rather than LibraryImport: the generated marshalling needs AllowUnsafeBlocks, and kill's ints need none.
    [DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054
    private static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054
}
