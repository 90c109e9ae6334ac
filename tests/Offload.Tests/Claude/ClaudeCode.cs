using System.Runtime.CompilerServices;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using Offload.Workspace;

namespace Offload.Tests.Claude;

/// <summary>
/// The real Claude Code CLI that <c>scripts/test-deps.sh</c> installs in the repository's
/// <c>.tools/claude</c>. Tests that need it fail (never skip) when it is missing.
/// </summary>
public static class ClaudeCode
{
    public static string Executable { get; } = Find();

    private static string Find([CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile)!, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, ".tools", "claude", "node_modules", ".bin", "claude");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException(
            "The Claude Code CLI is not installed for the tests: run scripts/test-deps.sh (it installs @anthropic-ai/claude-code into .tools/claude).");
    }

    /// <summary>Writes the daemon's config: the claude engine uses the test binary (or <paramref name="path"/>), with Offload's <paramref name="permissions"/> rules.</summary>
    public static void Configure(OffloadHarness h, object? permissions = null, IReadOnlyList<string>? args = null, string? path = null)
    {
        var config = new Dictionary<string, object>
        {
            ["engines"] = new { claude = new { path = path ?? Executable, args = args ?? [] } },
        };
        if (permissions is not null)
        {
            config["permissions"] = permissions;
        }

        var dir = Path.Combine(h.OffloadHome, "config");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
    }

    /// <summary>The worktree task <paramref name="id"/> titled <paramref name="prompt"/> will get (Claude Code's file tools need absolute paths).</summary>
    public static string WorktreeOf(OffloadHarness h, long id, string prompt) =>
        Path.Combine(h.OffloadHome, "data", "worktrees", $"{id}-{GitWorkspace.Slug(prompt)}");

    public static async Task<TaskInfo> RunClaudeAsync(this OffloadHarness h, string model, string prompt, params string[] extra) =>
        await h.RunTaskAsync(model, prompt, ["--engine", "claude", .. extra]);

    /// <summary>Follows the task's journal until an event matches (no polling sleeps: <c>logs -f</c> streams it).</summary>
    public static async Task<AgentEvent> WaitForEventAsync(this OffloadHarness h, long id, Func<AgentEvent, bool> match, int timeoutSeconds = 60)
    {
        using var follower = h.Start("logs", "-f", "--json", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            while (await follower.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                var e = JsonSerializer.Deserialize<AgentEvent>(line, OffloadJson.Options)!;
                if (match(e))
                {
                    return e;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            if (!follower.HasExited)
            {
                follower.Kill();
            }
        }

        throw new TimeoutException($"task {id}: the expected event did not come within {timeoutSeconds} s; journal:\n" +
                                   string.Join("\n", (await h.EventsAsync(id)).Select(e => JsonSerializer.Serialize(e, OffloadJson.Options)[..Math.Min(300, JsonSerializer.Serialize(e, OffloadJson.Options).Length)])));
    }

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
}
