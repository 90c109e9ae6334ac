using System.Diagnostics;
using System.Text.Json;
using Offload.Agent.Tools;

namespace Offload.Bench;

/// <summary>
/// Glob and Grep of the builtin agent on a generated tree of 100,000 files: 70,000 sources in 700 folders, plus
/// 30,000 files under node_modules that .gitignore excludes (walked past, not searched). Each tool is timed
/// warm (the page cache holds the tree, as after an agent's first search), median of the runs.
/// </summary>
public static class SearchBench
{
    public const int Files = 100_000;
    private const int Ignored = 30_000;

    public static async Task<Figure> RunAsync(bool quick, TextWriter log)
    {
        var root = Directory.CreateTempSubdirectory("offload-bench-search-").FullName;
        try
        {
            Generate(root);
            log.WriteLine($"  generated {Files} files in {root}");
            var context = new ToolContext(root, Path.Combine(root, ".spill"));
            var glob = await TimeAsync(new GlobTool(), """{"pattern":"**/*.cs"}""", context, quick);
            var grep = await TimeAsync(new GrepTool(), """{"pattern":"needle_[0-9]+"}""", context, quick);
            var grepContent = await TimeAsync(new GrepTool(), """{"pattern":"needle_[0-9]+","output_mode":"content"}""", context, quick);
            string Shown((double Wall, double Cpu) t) => $"{Stats.Ms(t.Wall)} ({Stats.Ms(t.Cpu)} CPU)";
            return new Figure("search (100,000 files)",
                $"median wall (CPU): Glob {Shown(glob)} · Grep {Shown(grep)} · Grep content {Shown(grepContent)}",
                "n/a (Claude Code 2.1.197 searches through Bash)",
                "each under 2 s on 2 CPUs",
                Math.Max(glob.Wall, Math.Max(grep.Wall, grepContent.Wall)) < 2000,
                $"{Ignored} files under node_modules skipped by .gitignore");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(double Wall, double Cpu)> TimeAsync(ITool tool, string input, ToolContext context, bool quick)
    {
        using var document = JsonDocument.Parse(input);
        var first = await tool.InvokeAsync(document.RootElement, context); // warm-up, and a check that it found something
        if (first.IsError || first.Output.StartsWith("No ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{tool.Name} {input} found nothing: {first.Output}");
        }

        var runs = new List<(double Wall, double Cpu)>();
        using var self = Process.GetCurrentProcess();
        for (var i = 0; i < (quick ? 3 : 5); i++)
        {
            self.Refresh();
            var cpu = self.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            await tool.InvokeAsync(document.RootElement, context);
            var wall = clock.Elapsed.TotalMilliseconds;
            self.Refresh();
            runs.Add((wall, (self.TotalProcessorTime - cpu).TotalMilliseconds));
        }

        return (Stats.Median(runs.Select(r => r.Wall)), Stats.Median(runs.Select(r => r.Cpu)));
    }

    private static void Generate(string root)
    {
        File.WriteAllText(Path.Combine(root, ".gitignore"), "node_modules/\n/build/\n*.log\n");
        var line = "    public int Value { get; set; } // an ordinary line of source code, long enough to be typical\n";
        var body = string.Concat(Enumerable.Repeat(line, 40));
        for (var i = 0; i < Files; i++)
        {
            var ignored = i < Ignored;
            var dir = ignored ? Path.Combine(root, "node_modules", $"pkg{i % 300}", "lib") : Path.Combine(root, "src", $"module{i % 700}");
            Directory.CreateDirectory(dir);
            var needle = i % 1000 == 7 ? $"    // needle_{i}\n" : "";
            File.WriteAllText(Path.Combine(dir, ignored ? $"f{i}.js" : $"f{i}.cs"), "class C" + i + "\n{\n" + body + needle + "}\n");
        }
    }
}
