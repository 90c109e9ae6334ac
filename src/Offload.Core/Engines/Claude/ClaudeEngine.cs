using System.Globalization;
using Microsoft.Extensions.Logging;
using Offload.Agent;
using Offload.Config;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Engines.Claude;

/// <summary>
/// The <c>claude</c> engine: the real Claude Code CLI, headless (<c>claude -p --output-format
/// stream-json --verbose</c>), in the task's worktree, with a session id Offload chose. Every line
/// it prints is kept (<c>engine.note</c> <c>claude.raw</c>) and mapped to journal events
/// (<see cref="ClaudeStream"/>). A reply or a run cut short by a restart continues the same
/// session with <c>--resume</c>; permission prompts come to <see cref="ClaudePermissionServer"/>.
/// Where bubblewrap works, Claude Code runs inside it with the builtin engine's policy and reaches the
/// model only through the daemon (<see cref="ClaudeSandbox"/>). docs/claude-engine.md.
/// </summary>
public sealed partial class ClaudeEngine(
    ITaskStore store,
    ModelGateway models,
    ClaudePermissionServer permissions,
    OffloadPaths paths,
    Func<string, string?> getEnv,
    ILogger<ClaudeEngine> logger,
    Redaction.SecretRedactor? redactor = null) : IEngine
{
    public const string RawNote = "claude.raw";
    public const string SessionNote = "claude.session";
    public const string ProcessNote = "claude.process";
    public const string StoppedNote = "claude.stopped";
    public const string VersionNote = "claude.version";
    public const string SandboxNote = "claude.sandbox";

    /// <summary>A limit of <c>sandbox.limits</c> was reached and the commands Claude Code was running were killed (<see cref="ClaudeLimits"/>).</summary>
    public const string LimitNote = "claude.limit";
    public const string InstallHint = "npm install -g @anthropic-ai/claude-code";

    public const string InterruptedPrompt =
        "Your previous run on this task was interrupted (Offload stopped or restarted while you were working). " +
        "A command or edit that was in progress may or may not have taken effect: check the state of the files, then continue the task.";

    public const string LostSessionNote =
        "(Offload: Claude Code's record of the earlier conversation on this task was not found, so this is a new conversation. " +
        "The files in the worktree are as the earlier one left them; the messages below are everything the user said.)";

    /// <summary>Environment variables Claude Code gets from the daemon's own environment when they are set; nothing else leaks through.</summary>
    private static readonly string[] PassThrough =
    [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
        "CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN",
        "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "MCP_TOOL_TIMEOUT",
    ];


    public string Name => "claude";

    public async Task<EngineOutcome> RunAsync(EngineRun run, CancellationToken cancellationToken)
    {
        var task = run.Task;
        var journal = run.Journal;
        var history = CurrentConversation(run.History);

        await StopLeftoverAsync(history);
        foreach (var pending in Agent.Conversation.PendingCalls(history))
        {
            await journal.AppendAsync(new ToolResulted(pending.CallId, pending.Name, Agent.Conversation.InterruptedNote, IsError: true), cancellationToken);
        }

        if (UnrecordedEnd(history, task) is { } ended)
        {
            return ended; // Claude Code had finished; the daemon stopped before it wrote the end down
        }

        var limits = run.Config.Limits;
        var maxTurns = task.MaxTurns ?? limits.MaxTurns;
        var maxCost = task.MaxCostUsd ?? limits.MaxCostUsd;
        if (maxTurns is { } turnCap && task.Turns >= turnCap)
        {
            return new EngineOutcome.Limited($"turn limit reached ({turnCap} turns); raise it with `offload reply {task.Id} --max-turns N \"go on\"`");
        }

        if (maxCost is { } costCap && task.Usage.CostUsd >= costCap)
        {
            return new EngineOutcome.Limited($"cost limit reached (${task.Usage.CostUsd:0.####} of ${costCap:0.####})");
        }

        var settings = run.Config.Engines.Claude;
        var executable = Locate(settings);
        if (executable is null)
        {
            return new EngineOutcome.Failed(settings.Path is { Length: > 0 } configured
                ? $"Claude Code was not found at {configured} (engines.claude.path in Offload's config); install it with `{InstallHint}` or fix the path"
                : $"Claude Code was not found: there is no `claude` on PATH and engines.claude.path is not set; install it with `{InstallHint}`, or set engines.claude.path in {paths.ConfigFile}");
        }

        var environment = await EnvironmentAsync(task, settings, cancellationToken);
        string? stateDir = null;
        ClaudeUpstream? upstream = null;
        if (Agent.Tools.Sandbox.IsAvailable)
        {
            stateDir = ClaudeSandbox.StateDir(paths, task.Id);
            Directory.CreateDirectory(stateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            environment["CLAUDE_CONFIG_DIR"] = stateDir; // its sessions live there, the one folder of its own it may write
            upstream = ClaudeSandbox.Upstream(CliModel.IsSimulated(task.Model) ? new Uri(environment["ANTHROPIC_BASE_URL"]) : null, getEnv);
            if (redactor is not null)
            {
                upstream = upstream with { Redact = text => redactor.RedactForTask(task.Id, text) }; // .worktreeinclude values never reach the model
            }
        }

        try
        {
            await journal.AppendAsync(new EngineNote(VersionNote, await CliVersion.OfAsync(executable, environment, cancellationToken)), cancellationToken);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new EngineOutcome.Failed($"Claude Code at {executable} cannot be run: {e.Message}; reinstall it with `{InstallHint}`");
        }

        var (session, resume, prompt, note) = await SessionAsync(run, history, environment, cancellationToken);
        if (note is not null)
        {
            await journal.AppendAsync(new UserMessage(note, "offload"), cancellationToken);
        }

        await journal.AppendAsync(new EngineNote(SessionNote, session), cancellationToken);
        await journal.AppendAsync(new EngineNote(SandboxNote, stateDir is not null
            ? $"bubblewrap: writes only in the worktree and {stateDir}; no network but the model, through the daemon ({upstream!.BaseUrl})"
            : $"none: Claude Code and its commands run unsandboxed. {Agent.Tools.Sandbox.Problem}"), cancellationToken);
        var stream = new ClaudeStream(task.Turns, task.Model);
        using var registration = await permissions.RegisterAsync(run, stream, upstream, cancellationToken);
        var mcpConfig = Path.Combine(stateDir ?? paths.RuntimeDir, $"claude-mcp-{task.Id}-{registration.Token[..8]}.json");
        using (var file = new FileStream(mcpConfig, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            file.Write(System.Text.Encoding.UTF8.GetBytes(registration.McpConfig(stateDir is null ? registration.Url! : ClaudeSandbox.McpUrl))); // the token stays off the command line, where /proc shows it to everyone
        }

        try
        {
            var args = new List<string> { "-p", "--output-format", "stream-json", "--verbose", resume ? "--resume" : "--session-id", session };
            if (CliModel.CliName(task.Model) is { } model)
            {
                args.AddRange(["--model", model]);
            }

            args.AddRange(["--permission-mode", settings.PermissionMode, "--permission-prompt-tool", ClaudePermissionServer.PromptTool, "--mcp-config", mcpConfig]);
            if (run.Config.Permissions is { } own && own.Allow.Count + own.Ask.Count + own.Deny.Count > 0)
            {
                // Offload's own rules, in the same syntax, added to Claude Code's settings (which merge deny lists from every
                // source): so a deny holds even for what Claude Code allows by itself (acceptEdits lets rm, mv… run in the worktree).
                args.AddRange(["--settings", new System.Text.Json.Nodes.JsonObject { ["permissions"] = new System.Text.Json.Nodes.JsonObject { ["allow"] = Strings(own.Allow), ["ask"] = Strings(own.Ask), ["deny"] = Strings(own.Deny) } }.ToJsonString()]);
            }
            if (maxTurns is { } turns)
            {
                args.AddRange(["--max-turns", (turns - task.Turns).ToString(CultureInfo.InvariantCulture)]);
            }

            if (maxCost is { } cost && !CliModel.IsSimulated(task.Model))
            {
                args.AddRange(["--max-budget-usd", (cost - task.Usage.CostUsd).ToString("0.####", CultureInfo.InvariantCulture)]);
            }

            args.AddRange(settings.Args);
            if (stateDir is not null)
            {
                environment = ClaudeSandbox.Environment(environment, upstream!, registration.Token, stateDir, getEnv);
            }

            return await RunProcessAsync(run, executable, args, environment, prompt, stream, stateDir, cancellationToken);
        }
        catch (ClaudeEngineException e)
        {
            return new EngineOutcome.Failed(e.Message);
        }
        finally
        {
            File.Delete(mcpConfig);
        }
    }

    private async Task<EngineOutcome> RunProcessAsync(
        EngineRun run, string executable, List<string> args, Dictionary<string, string> environment, string prompt, ClaudeStream stream, string? stateDir,
        CancellationToken cancellationToken)
    {
        var journal = run.Journal;
        await run.WorktreeReady.WaitAsync(cancellationToken); // Claude Code starts in it
        // The values of files .worktreeinclude copied (.env) are secrets: the journal carries placeholders.
        redactor?.AddTaskSecrets(run.Task.Id, await Redaction.WorktreeIncludeSecrets.ReadAsync(run.Task.RepoPath, cancellationToken));
        List<string>? sandbox = null;
        Agent.Tools.SandboxPolicy? policy = null;
        if (stateDir is not null)
        {
            policy = await Agent.Tools.Sandbox.ForTaskAsync(run.Task.RepoPath, run.Worktree, run.Task.Branch, run.SpillDir, run.Config.Sandbox, cancellationToken)
                     ?? throw new ClaudeEngineException($"the sandbox for Claude Code could not be set up in {run.Worktree}: {Agent.Tools.Sandbox.Problem ?? "bubblewrap found no git directory"}; `offload doctor` says more");
            sandbox = ClaudeSandbox.Command(policy, environment.GetValueOrDefault("HOME"), stateDir, permissions.Socket, executable, getEnv);
        }

        try
        {
            return await FollowProcessAsync(run, executable, args, environment, prompt, stream, sandbox, policy, cancellationToken);
        }
        finally
        {
            // No setuid or setgid file outlives the run (the sandbox mounts the worktree nosuid; the user's shell would not).
            Agent.Tools.WorktreeScan.ClearSetIdAndMeasure(run.Worktree);
            if (policy is not null)
            {
                await Agent.Tools.SandboxObjects.AdoptAsync(policy, CancellationToken.None); // what git in the sandbox wrote, checked, into the repository
            }
        }
    }

    private async Task<EngineOutcome> FollowProcessAsync(
        EngineRun run, string executable, List<string> args, Dictionary<string, string> environment, string prompt, ClaudeStream stream,
        List<string>? sandbox, Agent.Tools.SandboxPolicy? policy, CancellationToken cancellationToken)
    {
        var journal = run.Journal;
        await using var limits = ClaudeLimits.Create(run.Config.Sandbox.Limits, run.Worktree);
        await using var process = await ClaudeProcess.StartAsync(executable, args, run.Worktree, environment, prompt, sandbox, limits?.Launcher);
        await journal.AppendAsync(new EngineNote(ProcessNote, $"{process.Pid} {process.StartTicks}"), CancellationToken.None);
        limits?.Watch(process.KillCommands, process.CountCommands, reason => journal.AppendAsync(new EngineNote(LimitNote, reason), CancellationToken.None));
        var stopped = 0;
        void Stop()
        {
            if (Interlocked.Exchange(ref stopped, 1) == 0)
            {
                _ = process.StopAsync();
            }
        }

        using var onCancel = cancellationToken.Register(Stop);
        using var onSoftStop = run.SoftStop.Register(Stop);
        var changedFiles = new HashSet<int>(); // turns with a tool call that may have changed files: each gets a checkpoint once it is over
        await foreach (var line in process.ReadLinesAsync(CancellationToken.None))
        {
            await journal.AppendAsync(new EngineNote(RawNote, line), CancellationToken.None);
            var turn = stream.Turn;
            var events = stream.Map(line);
            if (stream.Turn > turn && changedFiles.Remove(turn) && run.TurnEnded is { } turnEnded)
            {
                if (policy is not null)
                {
                    await Agent.Tools.SandboxObjects.AdoptAsync(policy, CancellationToken.None); // before the checkpoint reads the branch
                }

                await turnEnded(turn, CancellationToken.None);
            }

            foreach (var e in events)
            {
                var stored = await journal.AppendAsync(e, CancellationToken.None);
                run.Telemetry?.Observe(stored);
                if (e is ToolCalled { Name: "Write" or "Edit" or "MultiEdit" or "NotebookEdit" or "Bash" } call)
                {
                    changedFiles.Add(call.Turn);
                }
            }
        }

        var exit = await process.WaitAsync();
        if (Volatile.Read(ref stopped) == 1)
        {
            await journal.AppendAsync(new EngineNote(StoppedNote, $"exit {exit}"), CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            return new EngineOutcome.Suspended();
        }

        if (changedFiles.Remove(stream.Turn) && run.TurnEnded is { } lastTurnEnded)
        {
            if (policy is not null)
            {
                await Agent.Tools.SandboxObjects.AdoptAsync(policy, CancellationToken.None);
            }

            await lastTurnEnded(stream.Turn, CancellationToken.None);
        }

        if (stream.Result is { } result)
        {
            return result.ToOutcome(run.Task.Id);
        }

        var stderr = process.StderrTail;
        LogNoResult(run.Task.Id, exit, stderr);
        return new EngineOutcome.Failed($"Claude Code exited with code {exit} without a result{(stderr.Length == 0 ? "" : ": " + Last(stderr, 600))}");
    }

    /// <summary>The events of the conversation as it stands: from the last retry or rewind on (those start a new Claude Code session).</summary>
    private static List<AgentEvent> CurrentConversation(IReadOnlyList<AgentEvent> history)
    {
        var start = 0;
        for (var i = history.Count - 1; i >= 0; i--)
        {
            if (history[i] is AttemptStarted or TaskRewound)
            {
                start = i;
                break;
            }
        }

        return [.. history.Skip(start)];
    }

    /// <summary>A Claude Code process a daemon that died left running would still be writing the worktree: end it first.</summary>
    private async Task StopLeftoverAsync(List<AgentEvent> history)
    {
        var last = history.OfType<EngineNote>().LastOrDefault(n => n.Kind == ProcessNote);
        var parts = last?.Text.Split(' ');
        if (parts is [var pid, var ticks] && int.TryParse(pid, CultureInfo.InvariantCulture, out var p) && long.TryParse(ticks, CultureInfo.InvariantCulture, out var t)
            && await ClaudeProcess.StopLeftoverAsync(p, t))
        {
            LogKilledLeftover(last!.TaskId, p);
        }
    }

    /// <summary>The outcome of the last run, when Claude Code printed its result but the run's end is not in the journal.</summary>
    private static EngineOutcome? UnrecordedEnd(List<AgentEvent> history, TaskInfo task)
    {
        var start = history.FindLastIndex(e => e is EngineNote { Kind: SessionNote });
        if (start < 0 || history.Skip(start).Any(e => e is TaskFinished or CheckRan { Passed: false } or EngineNote { Kind: StoppedNote }))
        {
            return null;
        }

        var replay = new ClaudeStream(task.Turns, task.Model);
        foreach (var raw in history.Skip(start).OfType<EngineNote>().Where(n => n.Kind == RawNote))
        {
            replay.Map(raw.Text);
        }

        return replay.Result?.ToOutcome(task.Id);
    }

    /// <summary>
    /// Which session this run uses and what it says. A new conversation gets a new session id (stored
    /// on the task) and the prompt; an existing session is resumed with the replies written since it
    /// last finished, or, when its last run never finished, with a note that it was interrupted.
    /// </summary>
    private async Task<(string Session, bool Resume, string Prompt, string? Note)> SessionAsync(
        EngineRun run, List<AgentEvent> history, Dictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var lastRun = history.FindLastIndex(e => e is EngineNote { Kind: SessionNote });
        var known = lastRun < 0 ? null : ((EngineNote)history[lastRun]).Text;
        if (known is not null && SessionExists(known, environment))
        {
            var lastEnd = history.FindLastIndex(e => e is TaskFinished or CheckRan { Passed: false }); // a failed check ends a run too: its message follows
            if (lastEnd < lastRun)
            {
                return (known, true, InterruptedPrompt, InterruptedPrompt); // the replies before that run are in the session already
            }

            var replies = history.Skip(lastEnd + 1).OfType<UserMessage>().Where(u => u.Source != "offload").Select(u => u.Text).ToList();
            return (known, true, replies.Count > 0 ? string.Join("\n\n", replies) : "Go on with the task.", null);
        }

        // a known session that never printed a line never started: its id is still free
        var lost = known is not null && history.Any(e => e is EngineNote { Kind: RawNote });
        var session = known is null || lost ? Guid.NewGuid().ToString() : known;
        await store.SetSessionIdAsync(run.Task.Id, session, cancellationToken);
        var prompt = history.OfType<TaskCreated>().FirstOrDefault()?.Prompt ?? run.Task.Prompt;
        var parts = new List<string> { prompt };
        if (history.FirstOrDefault() is TaskRewound rewound)
        {
            parts.Add($"(Offload: this task was rewound to the end of turn {rewound.Turn}; the files are as they were then, and the earlier conversation is gone.)");
        }
        else if (lost)
        {
            parts.Add(LostSessionNote);
        }

        parts.AddRange(history.OfType<UserMessage>().Where(u => u.Source != "offload").Select(u => u.Text));
        return (session, false, string.Join("\n\n", parts), null);
    }

    /// <summary>Whether Claude Code has a transcript for the session (it writes one as soon as a run starts).</summary>
    private static bool SessionExists(string session, Dictionary<string, string> environment)
    {
        var dir = environment.GetValueOrDefault("CLAUDE_CONFIG_DIR")
                  ?? (environment.GetValueOrDefault("HOME") is { } home ? Path.Combine(home, ".claude") : null);
        var projects = dir is null ? null : Path.Combine(dir, "projects");
        return projects is not null && Directory.Exists(projects)
               && Directory.EnumerateDirectories(projects).Any(d => File.Exists(Path.Combine(d, session + ".jsonl")));
    }

    private string? Locate(ClaudeEngineSettings settings)
    {
        if (settings.Path is { Length: > 0 } configured)
        {
            var expanded = configured.StartsWith("~/", StringComparison.Ordinal) && getEnv("HOME") is { } home ? Path.Combine(home, configured[2..]) : configured;
            return File.Exists(expanded) ? Path.GetFullPath(expanded) : null;
        }

        return (getEnv("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "claude"))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// What Claude Code needs and nothing more: the basics, its own credentials, the extra names the
    /// config lists, no telemetry. A <c>sim:</c> model points it at the daemon's Simulator with a dummy key
    /// (the user's real key is not sent there).
    /// </summary>
    private async Task<Dictionary<string, string>> EnvironmentAsync(TaskInfo task, ClaudeEngineSettings settings, CancellationToken cancellationToken)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in PassThrough.Concat(settings.Env))
        {
            if (getEnv(name) is { Length: > 0 } value)
            {
                environment[name] = value;
            }
        }

        environment.TryAdd("PATH", "/usr/local/bin:/usr/bin:/bin");
        environment["DISABLE_TELEMETRY"] = "1";
        environment["DISABLE_AUTOUPDATER"] = "1";
        environment["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1";
        environment.TryAdd("MCP_TOOL_TIMEOUT", "604800000"); // a permission prompt may wait for the user for days
        if (CliModel.IsSimulated(task.Model))
        {
            foreach (var secret in new[] { "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN" })
            {
                environment.Remove(secret);
            }

            environment["ANTHROPIC_BASE_URL"] = (await models.SimulatorUrlAsync(cancellationToken)).ToString().TrimEnd('/');
            environment["ANTHROPIC_API_KEY"] = "offload-simulator";
        }

        return environment;
    }

    private static string Last(string text, int chars) => text.Length <= chars ? text : "…" + text[^chars..];

    [LoggerMessage(Level = LogLevel.Warning, Message = "task {TaskId}: a Claude Code process (pid {Pid}) from before the restart was still running; it was killed")]
    private partial void LogKilledLeftover(long taskId, int pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "task {TaskId}: Claude Code exited with code {Exit} without a result: {Stderr}")]
    private partial void LogNoResult(long taskId, int exit, string stderr);

    private static System.Text.Json.Nodes.JsonArray Strings(IEnumerable<string> values) =>
        new([.. values.Select(v => (System.Text.Json.Nodes.JsonNode?)System.Text.Json.Nodes.JsonValue.Create(v))]);
}
