using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Codex;

/// <summary>
/// The codex engine's sandbox, end to end: the real daemon runs the real Codex CLI in bubblewrap, and a scripted model
/// makes Codex's own <c>exec_command</c> try to get out. Each attempt must fail, in the tool result of the journal,
/// while the task goes on. The model is a Simulator of the test's own, named by <c>OPENAI_BASE_URL</c> with a
/// real-looking <c>OPENAI_API_KEY</c> in the daemon's environment, exactly as for an <c>openai:</c> model: Codex reaches
/// it only through the daemon's bridge, which adds the key. The harness lives in /var/tmp (the sandbox's /tmp is private).
/// </summary>
public sealed class CodexSandboxTests : IAsyncLifetime
{
    private const string ApiKey = "sk-proj-offload-test-secret-8c2e51";
    private const string KeyMarker = "offload-test-secret";

    private readonly OffloadHarness _h = new("/var/tmp");
    private SimulatorServer _model = null!;

    public async Task InitializeAsync()
    {
        _model = await SimulatorServer.StartAsync(new SimulatorOptions());
        _h.Env["OPENAI_BASE_URL"] = _model.BaseUrl + "v1";
        _h.Env["OPENAI_API_KEY"] = ApiKey;
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _model.DisposeAsync();
    }

    private static void AssertBlocked(ToolResulted result, string expected, string? mustNotSay = null)
    {
        Assert.True(result.IsError, $"expected a failure, got: {result.Output}");
        Assert.Contains(expected, result.Output, StringComparison.Ordinal);
        if (mustNotSay is not null)
        {
            Assert.DoesNotContain(mustNotSay, result.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task CommandEscapes_UnderTheCodexEngine_AreEachBlocked_WhileTheModelIsReachedThroughTheDaemonWithTheKey()
    {
        CodexCli.Configure(_h);
        var outside = Path.Combine(_h.Root, "outside-codex.txt");
        var userCodex = Path.Combine(_h.Home, ".codex");
        Directory.CreateDirectory(userCodex);
        File.WriteAllText(Path.Combine(userCodex, "auth.json"), """{"OPENAI_API_KEY":"sk-login-secret-41"}""");
        File.WriteAllText(Path.Combine(userCodex, "config.toml"), "# the user's\n");
        string[] commands =
        [
            $"touch {outside}",
            $"case \"$OPENAI_API_KEY $OFFLOAD_CODEX_API_KEY\" in *{KeyMarker}*) echo KEY-SEEN;; *) echo no key here; exit 3;; esac",
            $"grep -l {KeyMarker} /proc/*/environ || {{ echo no process here has the key; exit 4; }}",
            $"exec 3<>/dev/tcp/127.0.0.1/{_model.BaseUrl.Port} && echo CONNECTED",
            $"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{_h.SocketPath}'); print('CONNECTED')\"",
            "cat ~/.codex/auth.json",
            "echo 'notify = [\"sh\", \"-c\", \"touch /var/tmp/pwned\"]' >> ~/.codex/config.toml",
            "echo inside > inside.txt && cat inside.txt",
        ];
        var scenario = _h.Scenario("codex-escapes", Scenario([.. commands.Select(c => Tool("exec_command", new { cmd = c })), Final("done")]))["sim:".Length..];

        var task = await _h.RunCodexAsync("openai:" + scenario, "try to get out");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().ToList();
        Assert.Equal(commands.Length, results.Count);
        AssertBlocked(results[0], "Read-only file system");
        Assert.False(File.Exists(outside));
        AssertBlocked(results[1], "no key here", mustNotSay: "KEY-SEEN"); // Codex holds a placeholder, so its commands do too
        AssertBlocked(results[2], "no process here has the key");
        AssertBlocked(results[3], "Connection refused", mustNotSay: "CONNECTED"); // not the model's own address: only the bridge
        AssertBlocked(results[4], "No such file or directory", mustNotSay: "CONNECTED"); // the daemon's socket is hidden
        AssertBlocked(results[5], "No such file or directory", mustNotSay: "login-secret"); // the user's Codex login
        AssertBlocked(results[6], "Read-only file system");
        Assert.Equal("# the user's\n", File.ReadAllText(Path.Combine(userCodex, "config.toml"))); // a hook planted there would run unsandboxed
        Assert.False(results[7].IsError, results[7].Output);
        Assert.Equal("inside\n", _h.Git("show", $"{done.Branch}:inside.txt"));

        var calls = _model.Requests.Where(r => r.Api == "responses").ToList();
        Assert.Equal(commands.Length + 1, calls.Count); // every turn went through the bridge
        Assert.All(calls, r => Assert.Equal(ApiKey, r.ApiKey)); // with the real key, added by the daemon
        Assert.DoesNotContain(ApiKey, string.Join("\n", (await _h.EventsAsync(task.Id)).Select(e => JsonSerializer.Serialize(e, OffloadJson.Options))));
    }

    [Fact]
    public async Task WithoutBubblewrap_CodexRunsInItsOwnWorkspaceWriteSandbox_AndTheJournalSaysSo()
    {
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-such-bwrap");
        CodexCli.Configure(_h);
        var outside = Path.Combine(_h.Root, "outside-plain.txt");
        var scenario = _h.Scenario("codex-no-bwrap", Scenario(
            Tool("exec_command", new { cmd = "echo plain > plain.txt" }),
            Tool("exec_command", new { cmd = $"touch {outside}" }),
            Final("done")))["sim:".Length..];

        var task = await _h.RunCodexAsync("openai:" + scenario, "no bubblewrap");
        var done = await _h.WaitAsync(task.Id);

        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var events = await _h.EventsAsync(task.Id);
        var results = events.OfType<ToolResulted>().ToList();
        Assert.False(results[0].IsError, results[0].Output);
        Assert.Equal("plain\n", _h.Git("show", $"{done.Branch}:plain.txt"));
        Assert.False(File.Exists(outside)); // Codex's own sandbox kept the write in its workspace:
        if (results.Count == 2)
        {
            AssertBlocked(results[1], "Read-only file system"); // run and refused by the file system,
        }
        else
        {
            Assert.Single(results); // or (seen once) refused by Codex's policy before it ran, with no item on its stdout
        }

        var answered = _model.Requests.Last(r => r.Api == "responses").Body.Replace(" ", "", StringComparison.Ordinal);
        Assert.Contains("\"call_id\":\"call_sim_1_0\",\"output\"", answered); // either way the model was told
        var note = events.OfType<EngineNote>().Single(n => n.Kind == Offload.Engines.Codex.CodexEngine.SandboxNote);
        Assert.StartsWith("Codex's own sandbox (-s workspace-write): Offload's bubblewrap does not work here.", note.Text);
        Assert.All(_model.Requests.Where(r => r.Api == "responses"), r => Assert.Equal(ApiKey, r.ApiKey)); // straight to the model, with the key
    }
}
