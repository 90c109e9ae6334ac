using System.Runtime.CompilerServices;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Codex;

/// <summary>
/// The real Codex CLI that <c>scripts/test-deps.sh</c> installs in the repository's <c>.tools/codex</c>.
/// Tests that need it fail (never skip) when it is missing.
/// </summary>
public static class CodexCli
{
    public static string Executable { get; } = Find();

    private static string Find([CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile)!, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, ".tools", "codex", "node_modules", ".bin", "codex");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException(
            "The Codex CLI is not installed for the tests: run scripts/test-deps.sh (it installs @openai/codex into .tools/codex).");
    }

    /// <summary>Writes the daemon's config: the codex engine uses the test binary (or <paramref name="path"/>) with <paramref name="args"/>.</summary>
    public static void Configure(OffloadHarness h, IReadOnlyList<string>? args = null, string? path = null)
    {
        var dir = Path.Combine(h.OffloadHome, "config");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new
        {
            engines = new { codex = new { path = path ?? Executable, args = args ?? [] } },
        }));
    }

    public static async Task<TaskInfo> RunCodexAsync(this OffloadHarness h, string model, string prompt, params string[] extra) =>
        await h.RunTaskAsync(model, prompt, ["--engine", "codex", .. extra]);

    /// <summary>A Codex command that writes a file with its <c>apply_patch</c> (Codex runs it itself, as a file change).</summary>
    public static object Patch(string file, params string[] lines) =>
        new { cmd = $"apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {file}\n{string.Concat(lines.Select(l => "+" + l + "\n"))}*** End Patch\nEOF" };
}
