using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Offload.Protocol;
using Offload.Simulator;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Claude;

/// <summary>
/// The claude engine's sandbox, end to end: the real daemon runs the real Claude Code in bubblewrap,
/// and a scripted model makes Claude Code's own tools (Bash, Write, Edit) try to get out. Each
/// attempt must fail, in the tool result of the journal, while the task itself goes on. The model
/// is a Simulator of the test's own, named by <c>ANTHROPIC_BASE_URL</c> with a real-looking
/// <c>ANTHROPIC_API_KEY</c> in the daemon's environment, exactly as for an <c>anthropic:</c> model:
/// Claude Code reaches it only through the daemon's bridge, which adds the key. The harness lives in
/// /var/tmp (the sandbox's /tmp is private).
/// </summary>
public sealed class ClaudeSandboxTests : IAsyncLifetime
{
    private const string ApiKey = "sk-ant-api03-offload-test-secret-3f9a1c";
    private const string KeyMarker = "offload-test-secret";

    private readonly OffloadHarness _h = new("/var/tmp");
    private SimulatorServer _model = null!;

    public async Task InitializeAsync()
    {
        _model = await SimulatorServer.StartAsync(new SimulatorOptions());
        _h.Env["ANTHROPIC_BASE_URL"] = _model.BaseUrl.ToString().TrimEnd('/');
        _h.Env["ANTHROPIC_API_KEY"] = ApiKey;
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _model.DisposeAsync();
    }

    /// <summary>Runs one task under the claude engine against <paramref name="turns"/>, each a tool call, then a final answer.</summary>
    private async Task<(TaskInfo Done, List<ToolResulted> Results)> RunClaudeAsync(string name, params object[] turns)
    {
        // Claude Code sends the model name on; the Simulator takes a scenario file's path for one
        var scenario = _h.Scenario(name, Scenario([.. turns, Final("done")]))["sim:".Length..];
        var task = await _h.RunClaudeAsync("anthropic:" + scenario, name);
        var done = await _h.WaitAsync(task.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"{done.Status}: {done.Error}");
        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().ToList();
        Assert.Equal(turns.Length, results.Count);
        return (done, results);
    }

    private async Task<int> DaemonPidAsync()
    {
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "start")).ExitCode);
        var status = await _h.OffloadAsync("daemon", "status", "--json");
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("pid").GetInt32();
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
    public async Task BashEscapes_UnderTheClaudeEngine_AreEachBlocked_WhileTheModelIsReachedThroughTheDaemon()
    {
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash" } });
        var daemonPid = await DaemonPidAsync();
        using var host = new TcpListener(IPAddress.Loopback, 0); // a service on the host's own network
        host.Start();
        var hostPort = ((IPEndPoint)host.LocalEndpoint).Port;
        var outside = Path.Combine(_h.Root, "outside-bash.txt");
        var rootEscape = Path.Combine(_h.Root, "root-escape.txt");
        var login = Path.Combine(_h.Home, ".claude", ".credentials.json");
        Directory.CreateDirectory(Path.GetDirectoryName(login)!);
        File.WriteAllText(login, """{"claudeAiOauth":{"accessToken":"sk-ant-oat01-login-secret-77"}}""");
        var userSettings = Path.Combine(_h.Home, ".claude", "settings.json");
        File.WriteAllText(userSettings, "{}");

        var (done, results) = await RunClaudeAsync("claude-escapes",
            Tool("Bash", new { command = $"touch {outside}" }),
            Tool("Bash", new { command = $"case \"$ANTHROPIC_API_KEY $ANTHROPIC_AUTH_TOKEN $CLAUDE_CODE_OAUTH_TOKEN\" in *{KeyMarker}*) echo KEY-SEEN;; *) echo no key here; exit 3;; esac" }),
            Tool("Bash", new { command = $"cat /proc/{daemonPid}/environ | tr '\\0' '\\n' | grep -q {KeyMarker} && echo KEY-SEEN" }),
            Tool("Bash", new { command = $"grep -l {KeyMarker} /proc/*/environ || {{ echo no process here has the key; exit 4; }}" }),
            Tool("Bash", new { command = $"exec 3<>/dev/tcp/127.0.0.1/{hostPort} && echo CONNECTED" }),
            Tool("Bash", new { command = $"exec 3<>/dev/tcp/127.0.0.1/{_model.BaseUrl.Port} && echo CONNECTED" }),
            Tool("Bash", new { command = $"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{_h.SocketPath}'); print('CONNECTED')\"" }),
            Tool("Bash", new { command = $"mount -o remount,rw / && touch {rootEscape}" }),
            Tool("Bash", new { command = "grep -h login-secret ~/.claude/.credentials.json \"$CLAUDE_CONFIG_DIR\"/.credentials.json" }),
            Tool("Bash", new { command = $"echo '{{\"hooks\":{{}}}}' > {userSettings}" }),
            Tool("Bash", new { command = "echo inside > inside.txt && cat inside.txt" }));

        AssertBlocked(results[0], "Read-only file system");
        Assert.False(File.Exists(outside));
        AssertBlocked(results[1], "no key here", mustNotSay: "KEY-SEEN"); // Claude Code holds a placeholder, so its commands do too
        AssertBlocked(results[2], "No such file or directory", mustNotSay: "KEY-SEEN"); // the daemon is not in the sandbox's pid namespace
        AssertBlocked(results[3], "no process here has the key");
        AssertBlocked(results[4], "Connection refused", mustNotSay: "CONNECTED");
        AssertBlocked(results[5], "Connection refused", mustNotSay: "CONNECTED"); // not even the model's own address: only the bridge
        Assert.False(host.Pending(), "a command connected to the host's network");
        AssertBlocked(results[6], "No such file or directory", mustNotSay: "CONNECTED"); // the daemon's socket is hidden
        Assert.True(results[7].IsError, results[7].Output);
        Assert.False(File.Exists(rootEscape), "a remount as root wrote outside the sandbox");
        Assert.True(results[8].IsError && !results[8].Output.Contains("login-secret", StringComparison.Ordinal), results[8].Output);
        AssertBlocked(results[9], "Read-only file system");
        Assert.Equal("{}", File.ReadAllText(userSettings)); // the user's Claude Code settings: a hook planted there would run unsandboxed
        Assert.False(results[10].IsError, results[10].Output);
        Assert.Equal("inside\n", _h.Git("show", $"{done.Branch}:inside.txt"));

        var calls = _model.Requests.Where(r => r.Api == "anthropic" && r.TurnIndex >= 0).ToList();
        Assert.Equal(12, calls.Count); // every turn went through the bridge
        Assert.All(calls, r => Assert.Equal(ApiKey, r.ApiKey)); // with the real key, added by the daemon
    }

    [Fact]
    public async Task WorktreeIncludeSecrets_ClaudeCodeReads_NeverReachTheModel_NorTheJournal()
    {
        const string secret = "s3cr3t-db-password-7c41";
        File.WriteAllText(Path.Combine(_h.Repo, ".gitignore"), ".env\n");
        File.WriteAllText(Path.Combine(_h.Repo, ".worktreeinclude"), ".env\n");
        _h.Git("add", ".gitignore", ".worktreeinclude");
        _h.Git("commit", "-q", "-m", "worktreeinclude");
        File.WriteAllText(Path.Combine(_h.Repo, ".env"), $"DB_PASSWORD={secret}\n");
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash" } });

        var (done, results) = await RunClaudeAsync("claude-env", Tool("Bash", new { command = "cat .env", description = "read the env file" }));

        Assert.False(results[0].IsError, results[0].Output);
        Assert.Contains("DB_PASSWORD=[redacted", results[0].Output, StringComparison.Ordinal); // Claude Code read it: the journal has a placeholder
        var calls = _model.Requests.Where(r => r.Api == "anthropic" && r.TurnIndex >= 0).ToList();
        Assert.True(calls.Count >= 2, "the tool result went back to the model");
        Assert.All(calls, r => Assert.DoesNotContain(secret, r.Body, StringComparison.Ordinal));
        Assert.Contains(calls, r => r.Body.Contains("DB_PASSWORD=[redacted", StringComparison.Ordinal));
        Assert.DoesNotContain(secret, string.Join("\n", (await _h.EventsAsync(done.Id)).Select(e => JsonSerializer.Serialize(e, OffloadJson.Options))));

        // Claude Code's sessions of the task hold what it read: discard removes them with the worktree.
        var state = Path.Combine(_h.OffloadHome, "data", "claude", done.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(Directory.Exists(state), state);
        Assert.Equal(0, (await _h.OffloadAsync("discard", "--yes", done.Id.ToString(CultureInfo.InvariantCulture))).ExitCode);
        Assert.False(Directory.Exists(state), "discard left Claude Code's state of the task");
    }

    [Fact]
    public async Task ClaudeCodesWriteAndEdit_WriteInTheWorktree_ButNotOutsideIt()
    {
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Write", "Edit", "Read" } });
        const string prompt = "claude-files";
        var worktree = ClaudeCode.WorktreeOf(_h, 1, prompt);
        var outside = Path.Combine(_h.Root, "outside-write.txt");
        var userReadme = Path.Combine(_h.Repo, "README.md"); // the user's own checkout, outside the task's worktree

        var (done, results) = await RunClaudeAsync(prompt,
            Tool("Write", new { file_path = Path.Combine(worktree, "made.txt"), content = "made in the worktree\n" }),
            Tool("Write", new { file_path = outside, content = "escaped\n" }),
            Tool("Read", new { file_path = userReadme }),
            Tool("Edit", new { file_path = userReadme, old_string = "# sample", new_string = "# edited by the agent" }),
            Tool("Read", new { file_path = Path.Combine(worktree, "app.py") }),
            Tool("Edit", new { file_path = Path.Combine(worktree, "app.py"), old_string = "hello", new_string = "edited" }));

        Assert.False(results[0].IsError, results[0].Output);
        Assert.Equal("made in the worktree\n", _h.Git("show", $"{done.Branch}:made.txt"));
        AssertBlocked(results[1], "read-only file system");
        Assert.False(File.Exists(outside));
        Assert.False(results[2].IsError, results[2].Output); // reading is allowed: the file system is read-only, not hidden
        AssertBlocked(results[3], "read-only file system");
        Assert.Equal("# sample\n", File.ReadAllText(userReadme));
        Assert.False(results[5].IsError, results[5].Output);
        Assert.Equal("print('edited')\n", _h.Git("show", $"{done.Branch}:app.py"));
    }

    [Fact]
    public async Task WithoutBubblewrap_ClaudeCodeRunsAsBefore_AndTheJournalSaysItIsUnsandboxed()
    {
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-such-bwrap");
        ClaudeCode.Configure(_h, permissions: new { allow = new[] { "Bash" } });
        var (done, results) = await RunClaudeAsync("claude-no-sandbox", Tool("Bash", new { command = "echo plain > plain.txt" }));

        Assert.False(results[0].IsError, results[0].Output);
        Assert.Equal("plain\n", _h.Git("show", $"{done.Branch}:plain.txt"));
        var note = (await _h.EventsAsync(done.Id)).OfType<EngineNote>().Single(n => n.Kind == Offload.Engines.Claude.ClaudeEngine.SandboxNote);
        Assert.StartsWith("none: Claude Code and its commands run unsandboxed. bubblewrap (bwrap) is not installed", note.Text);
    }
}
