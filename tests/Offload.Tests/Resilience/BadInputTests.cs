using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Offload.Daemon;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// Each kind of bad input gets a message that says what, why and what to type next, a documented non-zero exit
/// code (ExitCodes.Table), and leaves every piece of data as it was.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    /// <summary>The repository, the worktrees folder and Offload's task list, to compare before and after.</summary>
    private async Task<string> StateAsync() =>
        _h.Git("rev-parse", "HEAD") + _h.Git("status", "--porcelain") + _h.Git("branch", "--list", "--all") +
        _h.Git("worktree", "list", "--porcelain") + string.Join("\n", Worktrees()) +
        (await _h.OffloadAsync("ls", "--all", "--json")).Stdout;

    private IEnumerable<string> Worktrees()
    {
        var folder = Path.Combine(_h.OffloadHome, "data", "worktrees");
        return Directory.Exists(folder) ? Directory.EnumerateFileSystemEntries(folder).Order(StringComparer.Ordinal) : [];
    }

    /// <summary>The error's first line says what was wrong (every phrase in it), in words: no stack frame, no .NET type.</summary>
    private static void AssertOneLineError(CliResult result, int exitCode, params string[] says)
    {
        AssertError(result, exitCode);
        var first = result.Stderr.Split('\n')[0];
        foreach (var text in says)
        {
            Assert.Contains(text, first);
        }

        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.DoesNotContain("System.", result.Stderr);
        Assert.DoesNotContain("Exception", result.Stderr);
    }

    private static void AssertError(CliResult result, int exitCode, params string[] says)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}: {result}");
        Assert.StartsWith("offload: ", result.Stderr);
        foreach (var text in says)
        {
            Assert.Contains(text, result.Stderr);
        }
    }

    [Fact]
    public async Task Run_OutsideAGitRepository_ExitsWithRepositoryError()
    {
        var plain = Directory.CreateDirectory(Path.Combine(_h.Root, "plain")).FullName;

        var run = await _h.OffloadInAsync(plain, null, "run", "--model", "sim:echo", "do it");

        AssertError(run, 6, "not a git repository", "git init");
        Assert.Empty(Directory.EnumerateFileSystemEntries(plain));
        Assert.Contains("no tasks yet", (await _h.OffloadAsync("ls")).Stdout);
    }

    [Fact]
    public async Task Run_InARepositoryWithNoCommits_ExitsWithRepositoryError()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_h.Root, "empty")).FullName;
        using (var init = Process.Start(new ProcessStartInfo("git", ["init", "-q", empty]))!)
        {
            await init.WaitForExitAsync();
        }

        var run = await _h.OffloadInAsync(empty, null, "run", "--model", "sim:echo", "do it");

        AssertError(run, 6, "no commits", "git commit --allow-empty");
        Assert.Contains("no tasks yet", (await _h.OffloadAsync("ls")).Stdout);
    }

    [Fact]
    public async Task Run_OnADetachedHead_IsAllowed_AndStartsFromThatCommit()
    {
        File.WriteAllText(Path.Combine(_h.Repo, "second.txt"), "second\n");
        _h.Git("add", "second.txt");
        _h.Git("commit", "-q", "-m", "second");
        var first = _h.Git("rev-parse", "HEAD~1").Trim();
        _h.Git("checkout", "-q", "--detach", first);

        var task = await _h.RunTaskAsync(_h.Scenario("detached", Scenario(Tool("Bash", new { command = "ls" }), Final("looked"))), "work on a detached head");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal(first, done.BaseCommit);
        Assert.Equal(first, done.BaseRef);
        Assert.DoesNotContain("second.txt", (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Single().Output);
        Assert.Equal(first, _h.Git("rev-parse", "HEAD").Trim());
        Assert.Equal("HEAD", _h.Git("rev-parse", "--abbrev-ref", "HEAD").Trim()); // still detached
    }

    [Fact]
    public async Task Run_WithABaseThatDoesNotResolve_ExitsWithRepositoryError()
    {
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "--base", "no-such-branch", "do it");

        AssertError(run, 6, "base `no-such-branch` is not a commit", "git fetch origin no-such-branch");
        Assert.Equal(before, await StateAsync());
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \n\t ")]
    public async Task Run_WithAnEmptyPrompt_ExitsWithBadInput(string prompt)
    {
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", prompt);

        AssertError(run, 2, "the prompt is empty", "offload run \"");
        Assert.Equal(before, await StateAsync());
    }

    [Fact]
    public async Task Run_WithAPromptOverOneMebibyte_ExitsWithBadInput()
    {
        var file = Path.Combine(_h.Root, "huge-prompt.txt");
        File.WriteAllText(file, new string('a', 1024 * 1024 + 1));
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "--file", file);

        AssertError(run, 2, "1,048,577 bytes", "the limit is 1 MiB", "put large material in a file");
        Assert.Equal(before, await StateAsync());
    }

    [Theory]
    [InlineData("show")]
    [InlineData("logs")]
    [InlineData("diff")]
    [InlineData("cancel")]
    [InlineData("wait")]
    public async Task ACommandOnAnUnknownTaskId_ExitsWithNotFound(string verb)
    {
        var result = await _h.OffloadAsync(verb, "999");

        AssertError(result, 3, "there is no task 999", "offload ls --all");
    }

    [Fact]
    public async Task CancelOrDiff_OfATaskThatEndedOrWasDiscarded_ExplainsWhy()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("write", Scenario(Tool("Write", new { file_path = "new.txt", content = "new\n" }), Final("wrote it"))), "write a file");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var before = await StateAsync();

        AssertError(await _h.OffloadAsync("cancel", Id(task.Id)), 4, $"task {task.Id} already ended (succeeded)", $"offload show {task.Id}");
        Assert.Equal(before, await StateAsync());
        var diff = await _h.OffloadAsync("diff", Id(task.Id)); // an ended task's diff is what review is for
        Assert.Equal(0, diff.ExitCode);
        Assert.Contains("+new", diff.Stdout);

        Assert.Equal(0, (await _h.OffloadAsync("discard", "--yes", Id(task.Id))).ExitCode);
        var discarded = await StateAsync();
        AssertError(await _h.OffloadAsync("cancel", Id(task.Id)), 4, "already ended");
        AssertError(await _h.OffloadAsync("diff", Id(task.Id)), 4, $"task {task.Id} was discarded", "offload retry");
        Assert.Equal(discarded, await StateAsync());
    }

    [Theory]
    [InlineData("nocolon", "has no provider", "provider:model")]
    [InlineData("sim:", "no model name after the colon", "provider:model")]
    [InlineData(":demo", "no provider before the colon", "provider:model")]
    [InlineData("acme:model-1", "provider 'acme' is not known", "models.providers")]
    [InlineData("anthropic:claude-opus-4-8", "ANTHROPIC_API_KEY is not set", "--model sim:demo")]
    [InlineData("openai:gpt-5", "OPENAI_API_KEY is not set", "export OPENAI_API_KEY")]
    public async Task Run_WithABadModelOrAMissingKey_ExitsWithModelError(string model, string why, string next)
    {
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", model, "do it");

        AssertError(run, 7, why, next);
        Assert.Equal(before, await StateAsync());
    }

    [Theory]
    [InlineData("--max-turns", "-3")]
    [InlineData("--max-turns", "0")]
    [InlineData("--max-cost", "-1")]
    [InlineData("--max-cost", "0")]
    [InlineData("--timeout", "0")]
    [InlineData("--timeout", "-5m")]
    public async Task Run_WithALimitOfZeroOrBelow_ExitsWithBadInput_AndCreatesNothing(string option, string value)
    {
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", option, value, "do it");

        AssertOneLineError(run, 2, option, $"'{value}'", "above 0");
        Assert.Equal(before, await StateAsync());
    }

    [Theory]
    [InlineData("reply")]
    [InlineData("retry")]
    public async Task ReplyOrRetry_WithALimitOfZeroOrBelow_ExitsWithBadInput_AndLeavesTheTaskAsItWas(string verb)
    {
        var task = await _h.RunTaskAsync("sim:echo", "say something");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var before = await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout;

        foreach (var (option, value) in new[] { ("--max-turns", "-3"), ("--max-cost", "-1"), ("--timeout", "0s") })
        {
            string[] args = verb == "reply" ? ["reply", Id(task.Id), option, value, "go on"] : ["retry", Id(task.Id), option, value];
            AssertOneLineError(await _h.OffloadAsync(args), 2, option, $"'{value}'", "above 0");
        }

        Assert.Equal(before, await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout);
    }

    [Fact]
    public async Task TheApi_RefusesLimitsOfZeroOrBelow_AndPromptsWithNulBytes_StoringNothing()
    {
        // argv cannot carry a NUL byte, so a prompt "argument" with one can only come through the API
        var before = await StateAsync();
        using var http = _h.SocketClient();
        CreateTaskRequest[] requests =
        [
            new("do it", _h.Repo, "sim:echo", MaxTurns: -3),
            new("do it", _h.Repo, "sim:echo", MaxCostUsd: -1m),
            new("do it", _h.Repo, "sim:echo", TimeoutSeconds: 0),
            new("do\0it", _h.Repo, "sim:echo"),
            new("do it", _h.Repo, "sim:echo", Name: "a\0name"),
        ];

        foreach (var request in requests)
        {
            using var response = await http.PostAsync("v1/tasks", JsonContent(request));
            var error = JsonSerializer.Deserialize<ApiError>(await response.Content.ReadAsStringAsync(), OffloadJson.Options)!;
            Assert.Equal(400, (int)response.StatusCode);
            Assert.Equal("bad_input", error.Code);
        }

        Assert.Equal(before, await StateAsync());
    }

    private static StringContent JsonContent<T>(T value) =>
        new(JsonSerializer.Serialize(value, OffloadJson.Options), Encoding.UTF8, "application/json");

    [Theory]
    [InlineData("stdin")]
    [InlineData("file")]
    public async Task Run_WithAPromptContainingANulByte_ExitsWithBadInput_AndCreatesNothing(string from)
    {
        var file = Path.Combine(_h.Root, "prompt.bin");
        File.WriteAllText(file, "look at this\0\u0001\u0002 PNG data");
        var before = await StateAsync();

        var run = from == "stdin"
            ? await _h.OffloadInAsync(_h.Repo, "look at this\0 PNG data", "run", "--model", "sim:echo", "-")
            : await _h.OffloadAsync("run", "--model", "sim:echo", "--file", file);

        AssertOneLineError(run, 2, "prompt", "NUL byte", "not text");
        Assert.Equal(before, await StateAsync());
    }

    [Fact]
    public async Task Run_WithAPromptFileThatIsNotUtf8_ExitsWithBadInput_AndCreatesNothing()
    {
        var file = Path.Combine(_h.Root, "latin1.txt");
        File.WriteAllBytes(file, Encoding.Latin1.GetBytes("fix the caf\u00e9 page\n"));
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "--file", file);

        AssertOneLineError(run, 2, file, "is not UTF-8 text", "byte 12");
        Assert.Equal(before, await StateAsync());
    }

    [Fact]
    public async Task Reply_WithANulByte_ExitsWithBadInput_AndLeavesTheTaskAsItWas()
    {
        var task = await _h.RunTaskAsync("sim:echo", "say something");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var before = await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout;

        var reply = await _h.OffloadInAsync(_h.Repo, "and now\0 this", "reply", Id(task.Id), "-");

        AssertOneLineError(reply, 2, "reply", "NUL byte");
        using var http = _h.SocketClient();
        using var response = await http.PostAsync($"v1/tasks/{task.Id}/reply", JsonContent(new ReplyRequest("and now\0 this")));
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal(before, await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout);
    }

    public static TheoryData<string, string, string> UnknownScenarios => new()
    {
        { "builtin", "sim:no-such", "no builtin scenario 'no-such'" },
        { "builtin", "sim:/no/such/scenario.json", "no scenario file /no/such/scenario.json" },
        { "builtin", "sim:scenario-that-does-not-parse.json", "turns must be an array" },
        { "claude", "sim:no-such", "no builtin scenario 'no-such'" },
        { "claude", "sim:/no/such/scenario.json", "no scenario file /no/such/scenario.json" },
    };

    [Theory]
    [MemberData(nameof(UnknownScenarios))]
    public async Task Run_WithASimulatorScenarioThatDoesNotExistOrParse_ExitsWithModelError_AndCreatesNothing(string engine, string model, string why)
    {
        File.WriteAllText(Path.Combine(_h.Repo, "scenario-that-does-not-parse.json"), """{ "turns": 3 }""");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "a scenario file");
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--engine", engine, "--model", model, "do it");

        AssertOneLineError(run, 7, model.Replace("sim:scenario", $"sim:{_h.Repo}/scenario", StringComparison.Ordinal), why, "nothing was started");
        Assert.Contains("--model sim:demo", run.Stderr);
        Assert.Equal(before, await StateAsync());
    }

    [Fact]
    public async Task Run_WithAScenarioFileNamedRelatively_FindsItWhereTheCommandWasTyped()
    {
        var sub = Directory.CreateDirectory(Path.Combine(_h.Repo, "sub")).FullName;
        File.WriteAllText(Path.Combine(sub, "mine.json"), JsonSerializer.Serialize(Scenario(Final("found it"))));

        var run = await _h.OffloadInAsync(sub, null, "run", "--json", "--model", "sim:mine.json", "do it");

        Assert.True(run.ExitCode == 0, run.ToString());
        var task = JsonSerializer.Deserialize<TaskInfo>(run.Stdout, OffloadJson.Options)!;
        Assert.Equal("sim:" + Path.Combine(sub, "mine.json"), task.Model);
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("found it", done.Summary);
    }

    [Fact]
    public async Task Retry_WithAnUnknownScenario_ExitsWithModelError_AndStartsNoAttempt()
    {
        var task = await _h.RunTaskAsync("sim:echo", "say something");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var before = await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout;

        var retry = await _h.OffloadAsync("retry", Id(task.Id), "--model", "sim:no-such");

        AssertOneLineError(retry, 7, "sim:no-such", "no builtin scenario 'no-such'");
        Assert.Equal(before, await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout);
    }

    public static TheoryData<string, string> BrokenConfigs => new()
    {
        { "{\n  \"limits\": ", "line 2, column 13: the file ends inside an object or a list" },
        { "{\n  \"limits\": { \"maxTurns\": }\n}", "line 2, column 27: '}' is an invalid start of a value (at limits.maxTurns)" },
        { "{\n  \"limits\": { \"maxTurns\": \"many\" }\n}", "line 2, column 35: limits.maxTurns should be a whole number" },
        { "{ \"limits\": { \"maxTurns\": -3 } }", "limits.maxTurns must be above 0 (it is -3)" },
        { "{ \"limits\": null }", "limits is null" },
        { "{ \"models\": { \"contextWindow\": { \"vllm:my-model\": 0 } } }", "models.contextWindow[\"vllm:my-model\"] is 0; a context window is a number of tokens, at least 2048 (e.g. 32768)" },
        { "{ \"models\": { \"contextWindow\": { \"vllm:my-model\": \"32k\" } } }", "line 1, column 56: models.contextWindow.vllm:my-model should be a whole number" },
        { "{ \"models\": { \"compactAt\": 80 } }", "models.compactAt is 80; it is the share of the context window at which the agent compacts, above 0.05 and below 1 (e.g. 0.8)" },
    };

    [Theory]
    [MemberData(nameof(BrokenConfigs))]
    public async Task Run_WithARepositoryConfigThatIsNotValid_ExitsWithBadInput_NamingFileAndLine_AndCreatesNothing(string config, string why)
    {
        var file = Path.Combine(_h.Repo, ".offload", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, config);
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "do it");

        AssertOneLineError(run, 2, $"the config file {file} is not valid: {why}");
        Assert.Contains($"next: fix {file}", run.Stderr);
        Assert.Equal(before, await StateAsync());
        File.Delete(file);
        var next = await _h.RunTaskAsync("sim:echo", "now it works");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(next.Id)).Status);
    }

    [Fact]
    public async Task Reply_WithARepositoryConfigThatDoesNotParse_ExitsWithBadInput_AndLeavesTheTaskAsItWas()
    {
        var task = await _h.RunTaskAsync("sim:echo", "say something");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var file = Path.Combine(_h.Repo, ".offload", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "{ \"limits\": ");
        var before = await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout;

        var reply = await _h.OffloadAsync("reply", Id(task.Id), "go on");

        AssertOneLineError(reply, 2, $"the config file {file} is not valid: line 1, column 13");
        Assert.Equal(before, await StateAsync() + (await _h.OffloadAsync("logs", "--json", Id(task.Id))).Stdout);
    }

    [Fact]
    public async Task AUserConfigThatDoesNotParse_RefusesToStartTheDaemon_NamingFileAndLine_WhileARunningDaemonKeepsItsConfig()
    {
        var task = await _h.RunTaskAsync("sim:echo", "before the config broke");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var file = Path.Combine(_h.OffloadHome, "config", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "{\n  \"maxParallel\": 2,\n  \"limits\": { \"maxTurns\": 10 \n");

        // the running daemon read its config when it started, and goes on with it
        var meanwhile = await _h.RunTaskAsync("sim:echo", "while the config is broken");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(meanwhile.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "stop")).ExitCode);
        var db = File.ReadAllBytes(Path.Combine(_h.OffloadHome, "data", "offload.db"));

        foreach (var args in new[] { new[] { "ls" }, ["run", "--model", "sim:echo", "do it"], ["show", Id(task.Id)] })
        {
            var result = await _h.OffloadAsync(args);
            AssertOneLineError(result, 2, $"the config file {file} is not valid: line 4, column 1", "missing");
            Assert.Contains($"next: fix {file}", result.Stderr);
            Assert.False(File.Exists(_h.SocketPath), "a daemon started");
        }

        Assert.Equal(db, File.ReadAllBytes(Path.Combine(_h.OffloadHome, "data", "offload.db")));
        Assert.Equal(["offload/1-before-the-config-broke", "offload/2-while-the-config-is-broken"],
            _h.Git("branch", "--list", "offload/*", "--format=%(refname:short)").Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var foreground = await _h.OffloadAsync("daemon", "run");
        AssertOneLineError(foreground, 2, $"the config file {file} is not valid: line 4, column 1");
        var doctor = await _h.OffloadAsync("doctor");
        Assert.Equal(1, doctor.ExitCode);
        Assert.Contains($"FAIL  config         the config file {file} is not valid: line 4, column 1", doctor.Stdout);

        File.WriteAllText(file, "{ \"maxParallel\": 2 }");
        Assert.Equal(2, JsonDocument.Parse((await _h.OffloadAsync("ls", "--json")).Stdout).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Run_WhenTheTasksBranchAlreadyExists_IsRefusedAtOnce_AndNothingIsStored()
    {
        // the first task of a fresh home is number 1, so its branch will be offload/1-<slug>
        _h.Git("branch", "offload/1-make-a-change");
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "make a change");

        AssertError(run, 4, "branch offload/1-make-a-change already exists", "git branch -D offload/1-make-a-change");
        Assert.Equal(before, await StateAsync());
        var next = await _h.RunTaskAsync("sim:echo", "make another change");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(next.Id)).Status);
    }

    [Fact]
    public async Task Run_WhenTheTasksWorktreeFolderAlreadyExists_IsRefusedAtOnce_AndTheFolderIsUntouched()
    {
        var folder = Path.Combine(_h.OffloadHome, "data", "worktrees", "1-make-a-change");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "mine\n");
        var before = await StateAsync();

        var run = await _h.OffloadAsync("run", "--model", "sim:echo", "make a change");

        AssertError(run, 4, $"worktree folder {folder} already exists");
        Assert.Equal(before, await StateAsync());
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName));
    }

    [Fact]
    public async Task OffloadHomeThatCannotBeCreated_ExitsWithDaemonError_SayingWhereAndWhatToDo()
    {
        var file = Path.Combine(_h.Root, "a-file");
        File.WriteAllText(file, "not a folder\n");
        _h.Env["OFFLOAD_HOME"] = Path.Combine(file, "home"); // even root cannot make a folder under a file

        var result = await _h.OffloadAsync("ls");

        AssertError(result, 5, file, "OFFLOAD_HOME");
        Assert.Equal("not a folder\n", File.ReadAllText(file));
    }

    [Fact]
    public async Task SocketFolderThatCannotBeCreated_ExitsWithDaemonError_SayingWhereAndWhatToDo()
    {
        Directory.CreateDirectory(_h.OffloadHome);
        File.WriteAllText(Path.Combine(_h.OffloadHome, "run"), "in the way\n");

        var result = await _h.OffloadAsync("ls");

        AssertError(result, 5, Path.Combine(_h.OffloadHome, "run"));
        Assert.Contains("XDG_RUNTIME_DIR", result.Stderr);
        Assert.Equal("in the way\n", File.ReadAllText(Path.Combine(_h.OffloadHome, "run")));
    }

    [Fact]
    public async Task ADaemonOfAnotherVersionOnTheSocket_IsRefused_AndLeftRunning()
    {
        var json = JsonSerializer.Serialize(new DaemonStatusResponse(4242, "0.0.1-other", _h.SocketPath, "/elsewhere", DateTimeOffset.UtcNow, 0, 0, 4), OffloadJson.Options);
        await using var other = new FakeDaemon(_h.SocketPath, json);

        var result = await _h.OffloadAsync("ls");

        AssertError(result, 5, "is version 0.0.1-other", $"this offload is {DaemonHost.Version}", "offload daemon stop");
        Assert.True(other.Requests >= 1);
        Assert.True(File.Exists(_h.SocketPath));
        Assert.False(File.Exists(Path.Combine(_h.OffloadHome, "data", "offload.db")));
    }

    [Fact]
    public async Task ToolsAskedToReachOutsideTheWorktree_AreRefused_AndNothingOutsideIsReadOrWritten()
    {
        var outside = Directory.CreateDirectory(Path.Combine(_h.Root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "top secret\n");
        var model = _h.Scenario("escape", Scenario(
            Tool("Read", new { file_path = "../../../../outside/secret.txt" }),
            Tool("Read", new { file_path = Path.Combine(outside, "secret.txt") }),
            Tool("Write", new { file_path = "../escaped.txt", content = "out\n" }),
            Tool("Write", new { file_path = Path.Combine(outside, "escaped.txt"), content = "out\n" }),
            Tool("Bash", new { command = $"ln -s '{outside}' link" }),
            Tool("Read", new { file_path = "link/secret.txt" }),
            Tool("Edit", new { file_path = "link/secret.txt", old_string = "top", new_string = "no" }),
            Final("could not get out")));

        var task = await _h.RunTaskAsync(model, "try to escape");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().Where(r => r.Name != "Bash").ToList();
        Assert.Equal(6, results.Count);
        Assert.All(results, r => Assert.True(r.IsError, $"{r.Name} was not refused: {r.Output}"));
        Assert.All(results, r => Assert.DoesNotContain("top secret", r.Output));
        Assert.All(results, r => Assert.Contains("outside", r.Output, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(["secret.txt"], Directory.EnumerateFileSystemEntries(outside).Select(Path.GetFileName));
        Assert.Equal("top secret\n", File.ReadAllText(Path.Combine(outside, "secret.txt")));
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(done.Worktree)!, "escaped.txt")));
    }

    [Fact]
    public async Task ReadingABinaryOrNonUtf8File_IsAClearToolError_AndTheTaskGoesOn()
    {
        File.WriteAllBytes(Path.Combine(_h.Repo, "image.bin"), [0x89, 0x50, 0x4E, 0x47, 0x00, 0x00, 0x01, 0x02]);
        File.WriteAllBytes(Path.Combine(_h.Repo, "latin1.txt"), Encoding.Latin1.GetBytes("caf\u00e9 cr\u00e8me\n"));
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "odd files");
        var model = _h.Scenario("binary", Scenario(
            Tool("Read", new { file_path = "image.bin" }),
            Tool("Read", new { file_path = "latin1.txt" }),
            Final("both refused")));

        var task = await _h.RunTaskAsync(model, "read odd files");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        var results = (await _h.EventsAsync(task.Id)).OfType<ToolResulted>().ToList();
        Assert.True(results[0].IsError);
        Assert.Contains("image.bin is a binary file", results[0].Output);
        Assert.True(results[1].IsError);
        Assert.Contains("latin1.txt is not valid UTF-8 text", results[1].Output);
    }

    [Fact]
    public async Task ANonSqliteFileAtTheDatabasePath_IsRefused_UnchangedByteForByte_WithTheReasonShown()
    {
        var db = Path.Combine(_h.OffloadHome, "data", "offload.db");
        Directory.CreateDirectory(Path.GetDirectoryName(db)!);
        var bytes = Encoding.UTF8.GetBytes("these are my notes, not a database\n" + new string('x', 5000));
        File.WriteAllBytes(db, bytes);

        var clock = Stopwatch.StartNew();
        var result = await _h.OffloadAsync("ls");

        AssertError(result, 5, "is not an Offload database", "left untouched", "Move it aside");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the refusal took {clock.Elapsed}");
        Assert.Equal(bytes, File.ReadAllBytes(db));
        Assert.False(File.Exists(db + "-wal"));
    }

    [Fact]
    public async Task AnotherProgramsSqliteDatabaseAtTheDatabasePath_IsRefused_UnchangedByteForByte()
    {
        var db = Path.Combine(_h.OffloadHome, "data", "offload.db");
        Directory.CreateDirectory(Path.GetDirectoryName(db)!);
        using (var connection = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('keep me');";
            command.ExecuteNonQuery();
        }

        var bytes = File.ReadAllBytes(db);

        var result = await _h.OffloadAsync("ls");

        AssertError(result, 5, "SQLite database of some other program", "left untouched");
        Assert.Equal(bytes, File.ReadAllBytes(db));
        Assert.False(File.Exists(db + "-wal"));
    }
}
