using System.Diagnostics;
using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using Offload.Tests.Claude;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Mcp;

/// <summary>
/// The real Claude Code (<c>claude -p</c>) as a foreground agent that delegates to Offload: it reaches the real
/// <c>offload mcp</c> through <c>--mcp-config</c>, and its model is a Simulator scenario that calls
/// <c>mcp__offload__offload_run</c>, then <c>mcp__offload__offload_wait</c>. The Offload task runs the builtin agent
/// against another scenario, in its own worktree of the harness's repository, through the real daemon.
/// </summary>
public sealed class ClaudeCodeMcpTests : IAsyncLifetime
{
    private const string Summary = "Wrote notes.txt in the background.";

    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task ClaudeCode_HandsATaskToOffloadOverMcp_WaitsForIt_AndItsFinalAnswerCarriesTheSummary()
    {
        var inner = _h.Scenario("inner", Scenario(Tool("Write", new { file_path = "notes.txt", content = "one\n" }), Final(Summary)));
        // The outer model cannot read the task id from the run's result (the Simulator plays a script), but in a fresh
        // OFFLOAD_HOME the first task is 1. Its last answer repeats the summary only if the wait's result carried it
        // to Claude Code's model (a rule on the tool result it sends back); otherwise it says it did not.
        var outer = Offload.Simulator.Scenario.Parse(JsonSerializer.Serialize(new
        {
            name = "delegate",
            turns = new object[]
            {
                Tool("mcp__offload__offload_run", new { prompt = "write the notes", model = inner }, "I'll hand this to Offload."),
                Tool("mcp__offload__offload_wait", new { id = 1, timeoutSeconds = 120 }),
                Final("The wait did not give me the task's summary."),
            },
            rules = new[] { new { whenContains = "summary: " + Summary, afterTurn = 2, turn = new { text = "Offload finished task 1: " + Summary } } },
        }));
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions { Scenarios = new Dictionary<string, Offload.Simulator.Scenario> { ["delegate"] = outer } });

        var config = Path.Combine(_h.Root, "mcp.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            mcpServers = new Dictionary<string, object>
            {
                ["offload"] = new { type = "stdio", command = OffloadHarness.Executable, args = new[] { "mcp" }, env = _h.Env.Where(e => e.Value is not null).ToDictionary(e => e.Key, e => e.Value) },
            },
        }));

        var claude = await RunClaudeAsync(simulator.BaseUrl, config,
            ["-p", "Hand the notes to Offload and tell me how it went.", "--output-format", "json", "--model", "delegate",
             "--mcp-config", config, "--strict-mcp-config", "--allowedTools", "mcp__offload__offload_run mcp__offload__offload_wait"]);

        using var answer = JsonDocument.Parse(claude);
        Assert.False(answer.RootElement.GetProperty("is_error").GetBoolean(), claude);
        Assert.Equal("Offload finished task 1: " + Summary, answer.RootElement.GetProperty("result").GetString());

        var task = await _h.ShowAsync(1);
        Assert.Equal(OffloadTaskStatus.Succeeded, task.Status);
        Assert.Equal(Summary, task.Summary);
        Assert.Equal(_h.Repo, task.RepoPath); // the server's working directory: Claude Code's
        Assert.Equal("one\n", _h.Git("show", $"{task.Branch}:notes.txt")); // on the task's branch, from its own worktree…
        Assert.False(File.Exists(Path.Combine(_h.Repo, "notes.txt"))); // …not in the repository Claude Code works in
        Assert.Equal(Path.Combine(_h.OffloadHome, "data", "worktrees", "1-write-the-notes"), task.Worktree);

        var sent = simulator.Requests.Where(r => r.Model == "delegate").ToList();
        Assert.Equal([0, 1, 2], sent.Select(r => r.TurnIndex).Distinct());
    }

    private async Task<string> RunClaudeAsync(Uri simulator, string mcpConfig, IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(ClaudeCode.Executable)
        {
            WorkingDirectory = _h.Repo,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in _h.Env)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        start.Environment["ANTHROPIC_BASE_URL"] = simulator.ToString().TrimEnd('/');
        start.Environment["ANTHROPIC_API_KEY"] = "offload-simulator";
        start.Environment["CLAUDE_CONFIG_DIR"] = Path.Combine(_h.Home, ".claude");
        start.Environment["DISABLE_TELEMETRY"] = "1";
        start.Environment["DISABLE_AUTOUPDATER"] = "1";
        start.Environment["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1";
        foreach (var secret in new[] { "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN" })
        {
            start.Environment.Remove(secret);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"claude -p did not finish within 180 s (mcp config {mcpConfig}):\n{await stdout}\n{await stderr}");
        }

        Assert.True(process.ExitCode == 0, $"claude exited {process.ExitCode}:\n{await stdout}\n{await stderr}");
        return await stdout;
    }
}
