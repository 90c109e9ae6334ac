using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// A new task's first model call goes out while its worktree is still being checked out: the repository's
/// CLAUDE.md / AGENTS.md come from the base commit (what the checkout writes), and a worktree that cannot be made
/// ends the task with git's reason, cutting short the model call in flight.
/// </summary>
public sealed class FirstTurnTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();
    private SimulatorServer? _sim;

    public async Task InitializeAsync()
    {
        _sim = await SimulatorServer.StartAsync(new SimulatorOptions());
        _h.WriteConfig(new
        {
            maxParallel = 1,
            models = new { providers = new Dictionary<string, object> { ["local"] = new { kind = "openai", baseUrl = _sim.BaseUrl + "v1", apiKey = "test" } } },
        });
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _sim!.DisposeAsync();
    }

    private string Model(string name, object scenario) => "local:" + _h.Scenario(name, scenario)[4..];

    [Fact]
    public async Task SystemPrompt_CarriesTheBaseCommitsClaudeAndAgentsFiles_FollowingASymlink_NotTheUsersUncommittedEdits()
    {
        File.WriteAllText(Path.Combine(_h.Repo, "AGENTS.md"), "Marker-7731: run the tests with make check.\n");
        File.CreateSymbolicLink(Path.Combine(_h.Repo, "CLAUDE.md"), "AGENTS.md");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "agent notes");
        File.WriteAllText(Path.Combine(_h.Repo, "AGENTS.md"), "Uncommitted-4410: not for the agent.\n");

        var task = await _h.RunTaskAsync(Model("notes", Scenario(
            Tool("Read", new { file_path = "CLAUDE.md" }),
            Final("Read the notes."))), "read the notes");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var requests = _sim!.Requests.Where(r => r.Api == "openai").ToList();
        Assert.Equal(2, requests.Count);
        foreach (var request in requests)
        {
            var system = SystemText(request.Body);
            Assert.Contains("The repository's CLAUDE.md says:\n<CLAUDE.md>\nMarker-7731: run the tests with make check.\n", system, StringComparison.Ordinal);
            Assert.Contains("The repository's AGENTS.md says:\n<AGENTS.md>\nMarker-7731: run the tests with make check.\n", system, StringComparison.Ordinal);
            Assert.DoesNotContain("Uncommitted-4410", system, StringComparison.Ordinal);
        }

        // The tool ran in the worktree once it was in place, and saw what the prompt said.
        var read = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single();
        Assert.False(read.IsError, read.Output);
        Assert.Contains("Marker-7731", read.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorktreeThatCannotBeMade_FailsTheTaskWithGitsReason_WithoutWaitingForTheModelCallInFlight()
    {
        // max_parallel 1: the second task waits in the queue while the first runs, so its worktree folder can be taken meanwhile.
        var first = await _h.RunTaskAsync(Model("slow", Scenario(Final("Done slowly.", delayMs: 60_000))), "take the only slot");
        var second = await _h.RunTaskAsync(Model("never", Scenario(Final("This answer must never be used.", delayMs: 30_000))), "wait your turn");
        Assert.Equal(OffloadTaskStatus.Queued, (await _h.ShowAsync(second.Id)).Status);
        Directory.CreateDirectory(Path.GetDirectoryName(second.Worktree)!);
        File.WriteAllText(second.Worktree, "a file where the worktree should go\n");

        var cancel = await _h.OffloadAsync("cancel", Id(first.Id));
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        var done = await _h.WaitAsync(second.Id);

        Assert.Equal(OffloadTaskStatus.Failed, done.Status);
        Assert.Contains($"worktree folder {second.Worktree} already exists", done.Error, StringComparison.Ordinal);
        Assert.Equal(0, done.Turns);
        Assert.Empty((await _h.EventsAsync(second.Id)).OfType<AssistantMessage>());
        Assert.Equal("a file where the worktree should go\n", File.ReadAllText(second.Worktree));
        Assert.DoesNotContain("offload/" + Path.GetFileName(second.Worktree), _h.Git("branch", "--list", "offload/*"), StringComparison.Ordinal);
    }

    /// <summary>The system message of an OpenAI-style chat request.</summary>
    private static string SystemText(string body)
    {
        using var json = JsonDocument.Parse(body);
        return string.Concat(json.RootElement.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("role").GetString() == "system")
            .Select(m => m.GetProperty("content").ValueKind == JsonValueKind.String
                ? m.GetProperty("content").GetString()
                : string.Concat(m.GetProperty("content").EnumerateArray().Select(c => c.GetProperty("text").GetString()))));
    }
}
