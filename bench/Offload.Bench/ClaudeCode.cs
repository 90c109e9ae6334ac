using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Offload.Bench;

/// <summary>
/// The real Claude Code CLI, the comparison: a temp HOME whose <c>.claude/settings.json</c> points it at the bench's
/// Simulator (its background sessions are started by its daemon and only see these settings), and a temp git repo.
/// </summary>
public sealed partial class ClaudeCode : IAsyncDisposable
{
    public string Executable { get; }
    public string Root { get; }
    public string Home { get; }
    public string Repo { get; }
    public Dictionary<string, string?> Env { get; }

    public ClaudeCode(string executable, Uri simulator)
    {
        Executable = executable;
        Root = Directory.CreateTempSubdirectory("offload-bench-claude-").FullName;
        Home = Path.Combine(Root, "home");
        Repo = Path.Combine(Root, "repo");
        Directory.CreateDirectory(Path.Combine(Home, ".claude"));
        var baseUrl = simulator.ToString().TrimEnd('/');
        var settings = new
        {
            apiKeyHelper = "echo bench-key",
            env = new Dictionary<string, string>
            {
                ["ANTHROPIC_BASE_URL"] = baseUrl,
                ["DISABLE_TELEMETRY"] = "1",
                ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
            },
        };
        File.WriteAllText(Path.Combine(Home, ".claude", "settings.json"), JsonSerializer.Serialize(settings));
        Env = new()
        {
            ["HOME"] = Home,
            ["ANTHROPIC_API_KEY"] = null,
            ["ANTHROPIC_BASE_URL"] = baseUrl,
            ["DISABLE_TELEMETRY"] = "1",
            ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
            ["CLAUDE_CONFIG_DIR"] = null,
            ["NO_COLOR"] = "1",
        };
        Sandbox.MakeRepository(Repo, Env);
    }

    /// <summary>Finds the CLI: an explicit path, <c>.tools/claude</c> above the working directory (scripts/test-deps.sh), or PATH.</summary>
    public static string? Find(string? explicitPath)
    {
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return File.Exists(explicitPath) ? explicitPath : null;
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".tools", "claude", "node_modules", ".bin", "claude");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(p => Path.Combine(p, "claude")).FirstOrDefault(File.Exists);
    }

    public Task<CliRun> RunAsync(params string[] args) => Sandbox.RunTimedAsync(Executable, args, Repo, Env);

    /// <summary>The processes Claude Code started for this HOME: its daemon, PTY hosts, spares and sessions.</summary>
    public List<int> Processes() => Procfs.WithEnvironment("HOME", Home);

    /// <summary>The session id `claude --bg` printed (<c>backgrounded · ID</c>), or null.</summary>
    public static string? BackgroundId(CliRun run) =>
        BackgroundedRegex().Match(run.Stdout + run.Stderr) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>Waits until the background session <paramref name="id"/> is listed idle (answered and waiting).</summary>
    public async Task WaitIdleAsync(string id, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < timeout)
        {
            // `claude agents` takes a few hundred ms itself; that is the polling interval.
            var agents = await RunAsync("agents", "--json");
            last = agents.Stdout;
            if (agents.ExitCode == 0 && last.TrimStart().StartsWith('['))
            {
                using var doc = JsonDocument.Parse(last);
                if (doc.RootElement.EnumerateArray().Any(s => Has(s, "id", id) && Has(s, "status", "idle")))
                {
                    return;
                }
            }
        }

        throw new TimeoutException($"Claude Code's background session {id} was not idle within {timeout}: {last}");
    }

    /// <summary>
    /// The processes of this HOME once the set stays the same across a `claude agents` call (its daemon may still be
    /// starting a pre-warmed spare when a session is busy): the steady state, not a spare caught half-loaded.
    /// </summary>
    public async Task<List<int>> SettledProcessesAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        var before = Processes();
        while (deadline.Elapsed < timeout)
        {
            await RunAsync("agents", "--json");
            var now = Processes();
            if (now.Order().SequenceEqual(before.Order()))
            {
                return now;
            }

            before = now;
        }

        throw new TimeoutException($"Claude Code's processes did not settle within {timeout}: {string.Join(' ', before)}");
    }

    private static bool Has(JsonElement session, string name, string value) =>
        session.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String && p.GetString() == value;

    [GeneratedRegex(@"backgrounded\W+(\S+)")]
    private static partial Regex BackgroundedRegex();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsync("daemon", "stop", "--any");
        }
        catch (TimeoutException)
        {
        }

        // Its PTY hosts linger a few seconds after the daemon stops: wait for them, then make sure.
        var deadline = Stopwatch.StartNew();
        while (Processes().Count > 0 && deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(200);
        }

        foreach (var pid in Processes())
        {
            try
            {
                Process.GetProcessById(pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
            }
        }

        Leftovers.Add(Root);
    }
}
