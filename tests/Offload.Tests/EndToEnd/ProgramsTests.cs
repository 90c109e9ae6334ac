using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Offload.Tests.Resilience;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// `offload` (the CLI) hands `daemon run` and `sim serve` to its sibling program, offload-daemon, by replacing its own
/// process: what the user started is the daemon or the Simulator itself, with the same pid, terminal and signals.
/// </summary>
public sealed class ProgramsTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task DaemonRun_InTheForeground_IsTheDaemonItself_AndStopsGracefullyOnSigterm()
    {
        using var daemon = _h.Start("daemon", "run");
        await ResilienceKit.WaitUntilAsync(() => File.Exists(_h.SocketPath) || daemon.HasExited, TimeSpan.FromSeconds(30), "the daemon's socket");

        var status = await _h.OffloadAsync("daemon", "status", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Equal(daemon.Id, JsonDocument.Parse(status.Stdout).RootElement.GetProperty("pid").GetInt32());
        var task = await _h.RunTaskAsync("sim:echo", "served by the foreground daemon");
        Assert.Equal(Protocol.OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);

        await SignalAsync(daemon.Id, "TERM");
        await daemon.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(0, daemon.ExitCode);
        Assert.False(File.Exists(_h.SocketPath));
    }

    [Fact]
    public async Task SimServe_AnswersAnthropicMessagesOverHttp_AndStopsOnSigterm()
    {
        using var sim = _h.Start("sim", "serve", "--scenario", "echo");
        var first = await sim.StandardOutput.ReadLineAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.StartsWith("simulator listening on http://127.0.0.1:", first);
        var baseUrl = new Uri(first!["simulator listening on ".Length..]);

        using var http = new HttpClient { BaseAddress = baseUrl };
        using var response = await http.PostAsJsonAsync("v1/messages", new
        {
            model = "echo",
            max_tokens = 100,
            messages = new[] { new { role = "user", content = "hello from the test" } },
        });
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.IsSuccessStatusCode, body);
        Assert.Equal("message", JsonDocument.Parse(body).RootElement.GetProperty("type").GetString());
        await SignalAsync(sim.Id, "TERM");
        await sim.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(0, sim.ExitCode);
    }

    [Fact]
    public async Task SimServe_WithAnUnknownScenario_SaysWhichExist()
    {
        var result = await _h.OffloadAsync("sim", "serve", "--scenario", "no-such-scenario");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("no-such-scenario", result.Stderr);
        Assert.Contains("demo", result.Stderr);
    }

    [Fact]
    public async Task SimServeHelp_NamesEveryBuiltinScenario()
    {
        var help = await _h.OffloadAsync("sim", "serve", "--help");

        // the CLI lists them without loading the Simulator (it starts in milliseconds); this keeps the list true
        Assert.Contains($"({string.Join(", ", Simulator.Scenario.BuiltinNames)})", help.Stdout);
    }

    private static async Task SignalAsync(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }
}
