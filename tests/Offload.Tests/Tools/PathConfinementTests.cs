using System.Text.Json;
using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

/// <summary>Every file tool stays inside the worktree, whatever the path or the symlinks in it.</summary>
public sealed class PathConfinementTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();

    public PathConfinementTests()
    {
        File.WriteAllText(Path.Combine(sandbox.Outside, "secret.txt"), "secret");
        File.CreateSymbolicLink(sandbox.Work("out-dir"), sandbox.Outside);
        File.CreateSymbolicLink(sandbox.Work("out-file"), Path.Combine(sandbox.Outside, "secret.txt"));
        File.CreateSymbolicLink(sandbox.Work("dangling"), Path.Combine(sandbox.Outside, "not-yet.txt"));
        Directory.CreateDirectory(sandbox.Work("sub"));
        File.CreateSymbolicLink(sandbox.Work("sub/up"), "../..");
    }

    public void Dispose() => sandbox.Dispose();

    public static TheoryData<string> EscapingPaths => new()
    {
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "/etc/passwd",
        "out-dir/secret.txt",
        "out-file",
        "sub/up/outside/secret.txt",
        "dangling",
    };

    [Theory]
    [MemberData(nameof(EscapingPaths))]
    public async Task Read_OutsideTheWorktree_IsRefused(string path)
    {
        var result = await new ReadTool().InvokeAsync(Input(("file_path", path)), sandbox.Context);

        AssertOutside(result, path);
    }

    [Theory]
    [MemberData(nameof(EscapingPaths))]
    public async Task Write_OutsideTheWorktree_IsRefusedAndWritesNothing(string path)
    {
        var result = await new WriteTool().InvokeAsync(Input(("file_path", path), ("content", "pwned")), sandbox.Context);

        AssertOutside(result, path);
        Assert.Equal("secret", File.ReadAllText(Path.Combine(sandbox.Outside, "secret.txt")));
        Assert.False(File.Exists(Path.Combine(sandbox.Outside, "not-yet.txt")));
    }

    [Theory]
    [MemberData(nameof(EscapingPaths))]
    public async Task Edit_OutsideTheWorktree_IsRefusedAndChangesNothing(string path)
    {
        var result = await new EditTool().InvokeAsync(Input(("file_path", path), ("old_string", "secret"), ("new_string", "pwned")), sandbox.Context);

        AssertOutside(result, path);
        Assert.Equal("secret", File.ReadAllText(Path.Combine(sandbox.Outside, "secret.txt")));
    }

    [Fact]
    public async Task GlobAndGrep_OutsidePath_IsRefused()
    {
        AssertOutside(await new GlobTool().InvokeAsync(Input(("pattern", "*"), ("path", "out-dir")), sandbox.Context), "out-dir");
        AssertOutside(await new GrepTool().InvokeAsync(Input(("pattern", "secret"), ("path", "../outside")), sandbox.Context), "../outside");
    }

    [Fact]
    public async Task SymlinkInsidePointingInside_IsFollowed()
    {
        sandbox.WriteFile("real/target.txt", "inside");
        File.CreateSymbolicLink(sandbox.Work("alias"), "real");
        File.CreateSymbolicLink(sandbox.Work("pending"), "real/later.txt");

        var read = await new ReadTool().InvokeAsync(Input(("file_path", "alias/target.txt")), sandbox.Context);
        var written = await new WriteTool().InvokeAsync(Input(("file_path", "pending"), ("content", "made")), sandbox.Context);

        Assert.Equal("     1\tinside\n", read.Output);
        Assert.Equal(new ToolResult("Created real/later.txt (4 bytes)."), written with { File = null });
        Assert.Equal("made", File.ReadAllText(sandbox.Work("real/later.txt")));
    }

    private static void AssertOutside(ToolResult result, string path)
    {
        Assert.True(result.IsError, result.Output);
        Assert.StartsWith($"{path} is outside the task's worktree", result.Output, StringComparison.Ordinal);
    }

    private static JsonElement Input(params (string Name, string Value)[] values) =>
        ToolSandbox.Input(values.ToDictionary(v => v.Name, v => (object?)v.Value));
}
