using System.Diagnostics;

namespace Offload.Simulator.Tests;

public sealed class BuiltinScenarioTests
{
    [Fact]
    public void Demo_EditsAStringItsWriteCreated()
    {
        var calls = Scenario.Builtin("demo").Turns.SelectMany(t => t.ToolCalls).ToList();
        var write = calls.Single(c => c.Name == "Write").Input;
        var edit = calls.Single(c => c.Name == "Edit").Input;

        Assert.Equal(write.GetProperty("file_path").GetString(), edit.GetProperty("file_path").GetString());
        var content = write.GetProperty("content").GetString()!;
        var oldString = edit.GetProperty("old_string").GetString()!;
        Assert.Equal(2, content.Split(oldString).Length);
    }

    [Fact]
    public void Demo_ToolInputsUseClaudeCodeParameterNames()
    {
        var allowed = new Dictionary<string, string[]>
        {
            ["Read"] = ["file_path", "offset", "limit"],
            ["Write"] = ["file_path", "content"],
            ["Edit"] = ["file_path", "old_string", "new_string", "replace_all"],
            ["Bash"] = ["command", "timeout", "description"],
            ["Glob"] = ["pattern", "path"],
            ["Grep"] = ["pattern", "path", "glob", "output_mode"],
        };

        foreach (var call in Scenario.BuiltinNames.SelectMany(n => Scenario.Builtin(n).Turns).SelectMany(t => t.ToolCalls))
        {
            Assert.True(allowed.ContainsKey(call.Name), call.Name);
            Assert.All(call.Input.EnumerateObject(), p => Assert.Contains(p.Name, allowed[call.Name]));
        }
    }

    [Fact]
    public async Task Demo_BashCommandsSucceedInAFreshGitRepository()
    {
        var repo = Directory.CreateTempSubdirectory("sim-demo-");
        try
        {
            await RunAsync(repo.FullName, "git init -q && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m init");
            await File.WriteAllTextAsync(Path.Combine(repo.FullName, "OFFLOAD_DEMO.md"), "note\n");
            var commands = Scenario.Builtin("demo").Turns.SelectMany(t => t.ToolCalls)
                .Where(c => c.Name == "Bash")
                .Select(c => c.Input.GetProperty("command").GetString()!);

            foreach (var command in commands)
            {
                await RunAsync(repo.FullName, command);
            }
        }
        finally
        {
            repo.Delete(recursive: true);
        }
    }

    private static async Task RunAsync(string directory, string command)
    {
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(process.ExitCode == 0, $"`{command}` failed: {await stderr}{await stdout}");
    }
}
