using Offload.Agent.Tools;

namespace Offload.Tests.Tools;

public sealed class WriteEditToolTests : IDisposable
{
    private readonly ToolSandbox sandbox = new();
    private readonly WriteTool write = new();
    private readonly EditTool edit = new();

    public void Dispose() => sandbox.Dispose();

    private Task<ToolResult> EditAsync(string path, string oldString, string newString, bool? replaceAll = null)
    {
        var input = new Dictionary<string, object?> { ["file_path"] = path, ["old_string"] = oldString, ["new_string"] = newString };
        if (replaceAll is { } all)
        {
            input["replace_all"] = all;
        }
        return edit.InvokeAsync(ToolSandbox.Input(input), sandbox.Context);
    }

    [Fact]
    public async Task Write_CreatesParentDirectoriesAndTheFile()
    {
        var result = await write.InvokeAsync(ToolSandbox.Input("""{"file_path":"deep/er/new.txt","content":"héllo\n"}"""), sandbox.Context);

        Assert.Equal(new ToolResult("Created deep/er/new.txt (7 bytes)."), result with { File = null });
        Assert.Equal(("deep/er/new.txt", 7L), (result.File!.Path, result.File.Size)); // what a later Write or Edit checks against
        Assert.Equal("héllo\n", File.ReadAllText(sandbox.Work("deep/er/new.txt")));
    }

    [Fact]
    public async Task Write_ExistingFile_IsOverwritten()
    {
        sandbox.WriteFile("a.txt", "old content");

        var result = await write.InvokeAsync(ToolSandbox.Input("""{"file_path":"a.txt","content":"new"}"""), sandbox.Context);

        Assert.Equal(new ToolResult("Overwrote a.txt (3 bytes)."), result with { File = null });
        Assert.Equal("new", File.ReadAllText(sandbox.Work("a.txt")));
    }

    [Fact]
    public async Task Write_IntoGitDirOrGitFile_IsRefused()
    {
        Directory.CreateDirectory(sandbox.Work(".git"));

        var result = await write.InvokeAsync(ToolSandbox.Input("""{"file_path":".git/config","content":"[core]"}"""), sandbox.Context);

        Assert.True(result.IsError);
        Assert.Contains("inside the worktree's .git", result.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(sandbox.Work(".git/config")));
    }

    [Fact]
    public async Task Edit_ReplacesTheUniqueOccurrence()
    {
        sandbox.WriteFile("code.cs", "int a = 1;\nint b = 2;\n");

        var result = await EditAsync("code.cs", "int b = 2;", "int b = 3;");

        Assert.Equal(new ToolResult("Edited code.cs: replaced 1 occurrence."), result with { File = null });
        Assert.Equal("int a = 1;\nint b = 3;\n", File.ReadAllText(sandbox.Work("code.cs")));
    }

    [Fact]
    public async Task Edit_NotUnique_IsRefusedUnlessReplaceAll()
    {
        sandbox.WriteFile("code.cs", "x = 1;\nx = 1;\nx = 1;\n");

        var refused = await EditAsync("code.cs", "x = 1;", "x = 2;");
        Assert.Equal(ToolResult.Error("old_string occurs 3 times in code.cs. Include more surrounding lines to make it unique, or set replace_all to true to replace every occurrence."), refused);
        Assert.Equal("x = 1;\nx = 1;\nx = 1;\n", File.ReadAllText(sandbox.Work("code.cs")));

        var replaced = await EditAsync("code.cs", "x = 1;", "x = 2;", replaceAll: true);
        Assert.Equal(new ToolResult("Edited code.cs: replaced 3 occurrences."), replaced with { File = null });
        Assert.Equal("x = 2;\nx = 2;\nx = 2;\n", File.ReadAllText(sandbox.Work("code.cs")));
    }

    [Fact]
    public async Task Edit_NotFound_IsAnError()
    {
        sandbox.WriteFile("code.cs", "int a = 1;\n");

        var result = await EditAsync("code.cs", "int  a = 1;", "int a = 2;");

        Assert.Equal(ToolResult.Error("old_string was not found in code.cs. It must match exactly, including whitespace and indentation; Read the file to copy the text."), result);
    }

    [Fact]
    public async Task Edit_IdenticalStrings_IsAnError()
    {
        sandbox.WriteFile("code.cs", "int a = 1;\n");

        var result = await EditAsync("code.cs", "a", "a");

        Assert.Equal(ToolResult.Error("old_string and new_string are identical; there is nothing to change."), result);
    }

    [Fact]
    public async Task Edit_MissingOrBinaryFile_IsAnError()
    {
        File.WriteAllBytes(sandbox.Work("blob"), [1, 0, 2]);

        Assert.Equal(ToolResult.Error("File does not exist: nope.cs. Use Write to create it."), await EditAsync("nope.cs", "a", "b"));
        Assert.Equal(ToolResult.Error("blob is a binary file (3 bytes, it contains NUL bytes); only text files can be read or edited."), await EditAsync("blob", "a", "b"));
    }
}
