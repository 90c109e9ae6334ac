using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

public sealed class GlobGrepToolTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();

    public GlobGrepToolTests()
    {
        var now = DateTime.UtcNow;
        Touch(sandbox.WriteFile("src/Old.cs", "class Old { } // TODO later\n"), now.AddHours(-3));
        Touch(sandbox.WriteFile("src/deep/New.cs", "class New\n{\n    // todo: now\n    // TODO twice\n}\n"), now.AddHours(-1));
        Touch(sandbox.WriteFile("Top.cs", "class Top { }\n"), now.AddHours(-2));
        Touch(sandbox.WriteFile("web/app.tsx", "// TODO tsx\n"), now.AddHours(-4));
        Touch(sandbox.WriteFile("web/app.ts", "// nothing\n"), now.AddHours(-5));
        sandbox.WriteFile("README.md", "TODO docs\n");
        sandbox.WriteFile(".git/hooks/Hook.cs", "// TODO in git\n");
        File.WriteAllBytes(sandbox.Work("src/blob.cs"), [(byte)'T', (byte)'O', (byte)'D', (byte)'O', 0, 1]);
        File.WriteAllText(Path.Combine(sandbox.Outside, "Leak.cs"), "// TODO outside\n");
        File.CreateSymbolicLink(sandbox.Work("src/leak.cs"), Path.Combine(sandbox.Outside, "Leak.cs"));
        File.CreateSymbolicLink(sandbox.Work("linked-dir"), sandbox.Outside);
    }

    public void Dispose() => sandbox.Dispose();

    [Fact]
    public async Task Glob_DoubleStar_ListsMatchesNewestFirstSkippingGitAndLinksOutside()
    {
        File.SetLastWriteTimeUtc(sandbox.Work("src/blob.cs"), DateTime.UtcNow.AddHours(-6));

        var result = await Glob("""{"pattern":"**/*.cs"}""");

        Assert.Equal(new ToolResult("src/deep/New.cs\nTop.cs\nsrc/Old.cs\nsrc/blob.cs"), result);
    }

    [Fact]
    public async Task Glob_SingleStarStaysInOneDirectory_AndBracesAlternate()
    {
        Assert.Equal("Top.cs", (await Glob("""{"pattern":"*.cs"}""")).Output);
        Assert.Equal("web/app.tsx\nweb/app.ts", (await Glob("""{"pattern":"web/*.{ts,tsx}"}""")).Output);
        Assert.Equal("src/deep/New.cs", (await Glob("""{"pattern":"**/N?w.cs","path":"src"}""")).Output);
        Assert.Equal("No files found.", (await Glob("""{"pattern":"**/*.java"}""")).Output);
    }

    [Fact]
    public async Task Glob_CapsTheNumberOfResults()
    {
        for (var i = 0; i < GlobTool.MaxResults + 5; i++)
        {
            sandbox.WriteFile($"many/f{i}.txt", "");
        }

        var lines = (await Glob("""{"pattern":"many/*.txt"}""")).Output.Split('\n');

        Assert.Equal(GlobTool.MaxResults + 1, lines.Length);
        Assert.Equal($"[Showing {GlobTool.MaxResults} of {GlobTool.MaxResults + 5} files, newest first. Use a narrower pattern or path.]", lines[^1]);
    }

    [Fact]
    public async Task Grep_FilesWithMatches_ListsTextFilesNewestFirstSkippingBinaryGitAndOutsideLinks()
    {
        var result = await Grep("""{"pattern":"TODO"}""");

        Assert.Equal(new ToolResult("Found 4 files\nsrc/deep/New.cs\nsrc/Old.cs\nweb/app.tsx\nREADME.md"), result with { Output = Reorder(result.Output) });
    }

    [Fact]
    public async Task Grep_ContentMode_ShowsPathLineNumberAndLine()
    {
        var result = await Grep("""{"pattern":"todo","-i":true,"output_mode":"content","glob":"*.cs"}""");

        Assert.Equal(new ToolResult("src/Old.cs:1:class Old { } // TODO later\nsrc/deep/New.cs:3:    // todo: now\nsrc/deep/New.cs:4:    // TODO twice"), result);
    }

    [Fact]
    public async Task Grep_CountMode_AndHeadLimit()
    {
        Assert.Equal("src/deep/New.cs:2\n2 matches in 1 files", (await Grep("""{"pattern":"TODO|todo","path":"src/deep","output_mode":"count"}""")).Output);
        Assert.Equal(
            "src/Old.cs:class Old { } // TODO later\n[Showing the first 1 of 2 entries; raise head_limit or narrow the search.]",
            (await Grep("""{"pattern":"TODO","path":"src","output_mode":"content","-n":false,"head_limit":1}""")).Output);
    }

    [Fact]
    public async Task Grep_InvalidRegex_IsAnErrorResult()
    {
        var result = await Grep("""{"pattern":"("}""");

        Assert.True(result.IsError);
        Assert.StartsWith("Invalid regular expression:", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Registry_Default_HasClaudeCodesFileShellAndPlanToolsWithObjectSchemas()
    {
        var registry = ToolRegistry.CreateDefault(); // Agent is added per run, with the run's agent types

        Assert.Equal(["Bash", "Edit", "ExitPlanMode", "Glob", "Grep", "Read", "TaskCreate", "TaskGet", "TaskList", "TaskUpdate", "Write"], registry.Keys.Order(StringComparer.Ordinal));
        Assert.All(registry, pair =>
        {
            Assert.Equal(pair.Key, pair.Value.Name);
            Assert.Equal("object", pair.Value.InputSchema.GetProperty("type").GetString());
            foreach (var required in pair.Value.InputSchema.TryGetProperty("required", out var names) ? names.EnumerateArray() : default)
            {
                Assert.True(pair.Value.InputSchema.GetProperty("properties").TryGetProperty(required.GetString()!, out _));
            }
        });
        Assert.Equal(["Bash", "Edit", "Write"], registry.Values.Where(t => t.Mutates).Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    /// <summary>README.md was written last in the constructor, so it is newest; the rest follow the set times.</summary>
    private static string Reorder(string output)
    {
        var lines = output.Split('\n').ToList();
        lines.Remove("README.md");
        lines.Add("README.md");
        return string.Join("\n", lines);
    }

    private Task<ToolResult> Glob(string json) => new GlobTool().InvokeAsync(ToolSandbox.Input(json), sandbox.Context);

    private Task<ToolResult> Grep(string json) => new GrepTool().InvokeAsync(ToolSandbox.Input(json), sandbox.Context);

    private static void Touch(string path, DateTime modifiedUtc) => File.SetLastWriteTimeUtc(path, modifiedUtc);
}
