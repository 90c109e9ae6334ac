using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

public sealed class ReadToolTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();
    private readonly ReadTool read = new();

    public void Dispose() => sandbox.Dispose();

    [Fact]
    public async Task Read_ShowsNumberedLinesLikeCatN()
    {
        sandbox.WriteFile("src/a.txt", "alpha\nbeta\n\ngamma");

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"src/a.txt"}"""), sandbox.Context);

        Assert.Equal(new ToolResult("     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma\n"), result with { File = null });
        Assert.Equal(("src/a.txt", 17L), (result.File!.Path, result.File.Size)); // the file as read, for Write and Edit
    }

    [Fact]
    public async Task Read_WithOffsetAndLimit_ShowsThatWindowAndSaysWhereToContinue()
    {
        sandbox.WriteFile("many.txt", string.Join("\n", Enumerable.Range(1, 10).Select(i => $"line {i}")));

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"many.txt","offset":4,"limit":2}"""), sandbox.Context);

        Assert.False(result.IsError);
        Assert.Equal("     4\tline 4\n     5\tline 5\n[Showing lines 4-5; the file continues. Read more with offset=6.]", result.Output);
    }

    [Fact]
    public async Task Read_AbsolutePathInsideWorktree_Works()
    {
        var path = sandbox.WriteFile("abs.txt", "x");

        var result = await read.InvokeAsync(ToolSandbox.Input(new Dictionary<string, object?> { ["file_path"] = path }), sandbox.Context);

        Assert.Equal("     1\tx\n", result.Output);
    }

    [Fact]
    public async Task Read_DefaultLimit_Is2000LinesAndLongLinesAreCut()
    {
        sandbox.WriteFile("long.txt", new string('x', 5000) + "\n" + string.Join("\n", Enumerable.Range(2, 2500).Select(i => "y")));

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"long.txt"}"""), new ToolContext(sandbox.WorkDir, sandbox.SpillDir, MaxOutputChars: 1_000_000));

        var lines = result.Output.Split('\n');
        Assert.Equal("     1\t" + new string('x', 2000) + "… [line cut, 5000 characters]", lines[0]);
        Assert.Equal("  2000\ty", lines[1999]);
        Assert.Equal("[Showing lines 1-2000; the file continues. Read more with offset=2001.]", lines[2000]);
    }

    [Fact]
    public async Task Read_OutputNeverExceedsTheCap()
    {
        sandbox.WriteFile("wide.txt", string.Join("\n", Enumerable.Range(1, 500).Select(i => new string('z', 100))));
        var context = sandbox.Context with { MaxOutputChars = 5_000 };

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"wide.txt"}"""), context);

        Assert.False(result.IsError);
        Assert.True(result.Output.Length <= 5_000, $"{result.Output.Length} characters");
        Assert.Contains("Read more with offset=", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_BinaryFile_IsRefusedWithItsSize()
    {
        File.WriteAllBytes(sandbox.Work("image.bin"), [0x89, 0x50, 0x4E, 0x47, 0x00, 0x01, 0x02]);

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"image.bin"}"""), sandbox.Context);

        Assert.Equal(ToolResult.Error("image.bin is a binary file (7 bytes, it contains NUL bytes); only text files can be read or edited."), result);
    }

    [Fact]
    public async Task Read_NonUtf8File_IsRefusedWithItsSize()
    {
        File.WriteAllBytes(sandbox.Work("latin1.txt"), [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'\n']);

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"latin1.txt"}"""), sandbox.Context);

        Assert.Equal(ToolResult.Error("latin1.txt is not valid UTF-8 text (5 bytes); only UTF-8 text files can be read or edited."), result);
    }

    [Fact]
    public async Task Read_Directory_SuggestsGlob()
    {
        Directory.CreateDirectory(sandbox.Work("src"));

        var result = await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"src"}"""), sandbox.Context);

        Assert.True(result.IsError);
        Assert.Contains("is a directory", result.Output, StringComparison.Ordinal);
        Assert.Contains("Glob", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_MissingFileOrParameter_IsAnErrorResult()
    {
        Assert.Equal(ToolResult.Error("File does not exist: nope.txt"), await read.InvokeAsync(ToolSandbox.Input("""{"file_path":"nope.txt"}"""), sandbox.Context));
        Assert.Equal(ToolResult.Error("Missing required parameter `file_path`."), await read.InvokeAsync(ToolSandbox.Input("{}"), sandbox.Context));
    }
}
