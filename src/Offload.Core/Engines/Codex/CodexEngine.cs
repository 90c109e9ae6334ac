using System.Globalization;
using Microsoft.Extensions.Logging;
using Offload.Agent;
using Offload.Config;
using Offload.Engines.Claude;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Engines.Codex;

/// <summary>
/// The <c>codex</c> engine: the real Codex CLI, headless (<c>codex exec --json</c>), in the task's worktree, with a
/// <c>CODEX_HOME</c> of the task's own. Every line it prints is kept (<c>engine.note</c> <c>codex.raw</c>) and mapped to
/// journal events (<see cref="CodexStream"/>). A reply or a run cut short by a restart continues the same session with
/// <c>codex exec resume</c>. Where bubblewrap works, Codex runs inside it with the builtin engine's policy and reaches the
/// model only through the daemon (<see cref="CodexSandbox"/>), sharing the claude engine's process handling, bridge and
/// limits. Codex exec never asks for approval (it runs with the approval policy <c>never</c>), so nothing reaches the
/// PermissionBroker. docs/codex-engine.md.
/// </summary>
public sealed partial class CodexEngine(
    ITaskStore store,
    ModelGateway models,
    ClaudePermissionServer bridge,
    OffloadPaths paths,
    Func<string, string?> getEnv,
    ILogger<CodexEngine> logger,
    Redaction.SecretRedactor? redactor = null) : IEngine
{
    public const string RawNote = "codex.raw";
    public const string SessionNote = "codex.session";
    public const string ProcessNote = "codex.process";
    public const string StoppedNote = "codex.stopped";
    public const string VersionNote = "codex.version";
    public const string SandboxNote = "codex.sandbox";
    public const string LimitNote = "codex.limit";

    /// <summary>An error Codex printed that did not end the run (a warning, a retry it gave up on before <c>turn.failed</c>).</summary>
    public const string ErrorNote = "codex.error";

    /// <summary>The journal's names for Codex's commands and patches.</summary>
    public const string CommandTool = "exec_command";
    public const string PatchTool = "apply_patch";

    public const string InstallHint = "npm install -g @openai/codex";

    private static readonly string[] PassThrough =
    [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
        "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
    ];


    public string Name => "codex";

    public async Task<EngineOutcome> RunAsync(EngineRun run, CancellationToken cancellationToken)
    {
        var task = run.Task;
        var journal = run.Journal;
        var history = CurrentConversation(run.History);

        await StopLeftoverAsync(history);
        foreach (var pending in Conversation.PendingCalls(history))
        {
            await journal.AppendAsync(new ToolResulted(pending.CallId, pending.Name, Conversation.InterruptedNote, IsError: true), cancellationToken);
        }

        if (UnrecordedEnd(history, task) is { } ended)
        {
            return ended; // Codex had finished; the daemon stopped before it wrote the end down
        }

        var limits = run.Config.Limits;
        var maxTurns = task.MaxTurns ?? limits.MaxTurns;
        var maxCost = task.MaxCostUsd ?? limits.MaxCostUsd;
        if (maxTurns is { } turnCap && task.Turns >= turnCap)
        {
            return TurnLimit(task.Id, turnCap);
        }

        if (maxCost is { } costCap && task.Usage.CostUsd >= costCap)
        {
            return new EngineOutcome.Limited($"cost limit reached (${task.Usage.CostUsd:0.####} of ${costCap:0.####})");
        }

        var settings = run.Config.Engines.Codex;
        var executable = Locate(settings);
        if (executable is null)
        {
            return new EngineOutcome.Failed(settings.Path is { Length: > 0 } configured
                ? $"Codex CLI was not found at {configured} (engines.codex.path in Offload's config); install it with `{InstallHint}` or fix the path"
                : $"Codex CLI was not found: there is no `codex` on PATH and engines.codex.path is not set; install it with `{InstallHint}`, or set engines.codex.path in {paths.ConfigFile}");
        }

        executable = CodexSandbox.Native(executable);
        var environment = Environment(settings);
        var stateDir = CodexSandbox.StateDir(paths, task.Id);
        Directory.CreateDirectory(stateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        environment["CODEX_HOME"] = stateDir;
        var sandboxed = Agent.Tools.Sandbox.IsAvailable;
        var upstream = CodexSandbox.Upstream(CliModel.IsSimulated(task.Model) ? await models.SimulatorUrlAsync(cancellationToken) : null, getEnv);
        if (sandboxed && redactor is not null)
        {
            upstream = upstream with { Redact = text => redactor.RedactForTask(task.Id, text) }; // .worktreeinclude values never reach the model
        }

        if (sandboxed && maxTurns is { } turnsCap)
        {
            upstream = upstream with { Budget = new ModelCallBudget(turnsCap - task.Turns) }; // the bridge refuses the answer past the cap
        }

        try
        {
            await journal.AppendAsync(new EngineNote(VersionNote, await CliVersion.OfAsync(executable, environment, cancellationToken)), cancellationToken);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new EngineOutcome.Failed($"Codex CLI at {executable} cannot be run: {e.Message}; reinstall it with `{InstallHint}`");
        }

        var (session, prompt, note) = Session(history, stateDir);
        if (note is not null)
        {
            await journal.AppendAsync(new UserMessage(note, "offload"), cancellationToken);
        }

        await journal.AppendAsync(new EngineNote(SandboxNote, sandboxed
            ? $"bubblewrap: writes only in the worktree and {stateDir}; no network but the model, through the daemon ({upstream.BaseUrl}); Codex's own sandbox off inside it (-s danger-full-access)"
            : $"Codex's own sandbox (-s workspace-write): Offload's bubblewrap does not work here. {Agent.Tools.Sandbox.Problem}"), cancellationToken);
        using var registration = sandboxed ? await bridge.RegisterAsync(run, new ClaudeStream(0, task.Model), upstream, cancellationToken) : null;
        var baseUrl = registration is not null
            ? new Uri($"http://127.0.0.1:{ClaudeSandbox.Port}{ClaudeModelProxy.PathPrefix}{registration.Token}")
            : upstream.BaseUrl;
        var configFile = Path.Combine(stateDir, "config.toml");
        File.Delete(configFile);
        using (var file = new FileStream(configFile, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            file.Write(System.Text.Encoding.UTF8.GetBytes(CodexSandbox.Config(baseUrl))); // the token stays off the command line, where /proc shows it to everyone
        }

        environment[CodexSandbox.KeyVariable] = registration is not null ? ClaudeSandbox.PlaceholderCredential : upstream.Credential?.Value ?? "";
        if (registration is not null && getEnv("DOTNET_ROOT") is { Length: > 0 } dotnet)
        {
            environment["DOTNET_ROOT"] = dotnet; // the bridge is a .NET program
        }

        if (registration is not null)
        {
            environment["TMPDIR"] = "/tmp";
        }

        var args = new List<string> { "exec", "--json", "--skip-git-repo-check", "-s", sandboxed ? "danger-full-access" : "workspace-write" };
        if (CliModel.CliName(task.Model) is { } model)
        {
            args.AddRange(["-m", model]);
        }

        args.AddRange(settings.Args);
        if (session is not null)
        {
            args.AddRange(["resume", session]);
        }

        args.Add("-");
        try
        {
            var outcome = await RunProcessAsync(run, executable, args, environment, prompt, stateDir, sandboxed ? null : maxTurns, registration?.Token, cancellationToken);
            return upstream.Budget is { Spent: true } && outcome is EngineOutcome.Failed ? TurnLimit(task.Id, maxTurns!.Value) : outcome;
        }
        catch (ClaudeEngineException e)
        {
            return new EngineOutcome.Failed(e.Message.Replace("Claude Code", "Codex", StringComparison.Ordinal));
        }
    }

    private async Task<EngineOutcome> RunProcessAsync(
        EngineRun run, string executable, List<string> args, Dictionary<string, string> environment, string prompt, string stateDir,
        int? maxTurns, string? token, CancellationToken cancellationToken)
    {
        await run.WorktreeReady.WaitAsync(cancellationToken); // Codex starts in it
        redactor?.AddTaskSecrets(run.Task.Id, await Redaction.WorktreeIncludeSecrets.ReadAsync(run.Task.RepoPath, cancellationToken));
        List<string>? sandbox = null;
        Agent.Tools.SandboxPolicy? policy = null;
        if (token is not null)
        {
            policy = await Agent.Tools.Sandbox.ForTaskAsync(run.Task.RepoPath, run.Worktree, run.Task.Branch, run.SpillDir, run.Config.Sandbox, cancellationToken)
                     ?? throw new ClaudeEngineException($"the sandbox for Codex could not be set up in {run.Worktree}: {Agent.Tools.Sandbox.Problem ?? "bubblewrap found no git directory"}; `offload doctor` says more");
            sandbox = CodexSandbox.Command(policy, environment.GetValueOrDefault("HOME"), stateDir, bridge.Socket, executable, getEnv);
        }

        try
        {
            var outcome = await FollowProcessAsync(run, executable, args, environment, prompt, sandbox, policy, maxTurns, cancellationToken);
            return token is null ? outcome : outcome switch
            {
                EngineOutcome.Failed failed => new EngineOutcome.Failed(failed.Why.Replace(token, "TOKEN", StringComparison.Ordinal), failed.Summary), // the bridge's URL is in Codex's errors
                _ => outcome,
            };
        }
        finally
        {
            Agent.Tools.WorktreeScan.ClearSetIdAndMeasure(run.Worktree);
            if (policy is not null)
            {
                await Agent.Tools.SandboxObjects.AdoptAsync(policy, CancellationToken.None);
            }
        }
    }

    private async Task<EngineOutcome> FollowProcessAsync(
        EngineRun run, string executable, List<string> args, Dictionary<string, string> environment, string prompt,
        List<string>? sandbox, Agent.Tools.SandboxPolicy? policy, int? maxTurns, CancellationToken cancellationToken)
    {
        var journal = run.Journal;
        var task = run.Task;
        await using var limits = ClaudeLimits.Create(run.Config.Sandbox.Limits, run.Worktree, "Codex");
        await using var process = await ClaudeProcess.StartAsync(executable, args, run.Worktree, environment, prompt, sandbox, limits?.Launcher);
        await journal.AppendAsync(new EngineNote(ProcessNote, $"{process.Pid} {process.StartTicks}"), CancellationToken.None);
        limits?.Watch(process.KillCommands, process.CountCommands, reason => journal.AppendAsync(new EngineNote(LimitNote, reason), CancellationToken.None));
        var stopped = 0;
        var overTurns = false;
        void Stop()
        {
            if (Interlocked.Exchange(ref stopped, 1) == 0)
            {
                _ = process.StopAsync();
            }
        }

        using var onCancel = cancellationToken.Register(Stop);
        using var onSoftStop = run.SoftStop.Register(Stop);
        var stream = new CodexStream(task.Turns, task.Model, usage => CliModel.IsSimulated(task.Model) ? 0m : models.Settings.Cost(task.Model, usage));
        var changedFiles = new HashSet<int>();
        await foreach (var line in process.ReadLinesAsync(CancellationToken.None))
        {
            await journal.AppendAsync(new EngineNote(RawNote, line), CancellationToken.None);
            if (overTurns)
            {
                continue;
            }

            var turn = stream.Turn;
            var session = stream.SessionId;
            var events = stream.Map(line);
            if (stream.SessionId is { } id && id != session)
            {
                await store.SetSessionIdAsync(task.Id, id, CancellationToken.None);
                await journal.AppendAsync(new EngineNote(SessionNote, id), CancellationToken.None);
            }

            if (stream.Turn > turn && changedFiles.Remove(turn))
            {
                await CheckpointAsync(run, policy, turn);
            }

            if (maxTurns is { } cap && stream.Turn > cap)
            {
                overTurns = true; // the answer past the cap is not the task's: stop before it acts
                Stop();
                continue;
            }

            foreach (var e in events)
            {
                var stored = await journal.AppendAsync(e, CancellationToken.None);
                run.Telemetry?.Observe(stored);
                if (e is ToolCalled { Name: CommandTool or PatchTool } call)
                {
                    changedFiles.Add(call.Turn);
                }
            }
        }

        var exit = await process.WaitAsync();
        if (changedFiles.Remove(stream.Turn))
        {
            await CheckpointAsync(run, policy, stream.Turn);
        }

        if (overTurns)
        {
            await journal.AppendAsync(new EngineNote(StoppedNote, $"exit {exit}: turn limit"), CancellationToken.None);
            return TurnLimit(task.Id, maxTurns!.Value);
        }

        if (Volatile.Read(ref stopped) == 1)
        {
            await journal.AppendAsync(new EngineNote(StoppedNote, $"exit {exit}"), CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            return new EngineOutcome.Suspended();
        }

        if (stream.Result is { } result)
        {
            return result.ToOutcome();
        }

        var stderr = process.StderrTail;
        LogNoResult(task.Id, exit, stderr);
        return new EngineOutcome.Failed($"Codex exited with code {exit} without finishing its turn{(stderr.Length == 0 ? "" : ": " + Last(stderr, 600))}");
    }

    private static async Task CheckpointAsync(EngineRun run, Agent.Tools.SandboxPolicy? policy, int turn)
    {
        if (run.TurnEnded is not { } turnEnded)
        {
            return;
        }

        if (policy is not null)
        {
            await Agent.Tools.SandboxObjects.AdoptAsync(policy, CancellationToken.None); // before the checkpoint reads the branch
        }

        await turnEnded(turn, CancellationToken.None);
    }

    private static EngineOutcome.Limited TurnLimit(long taskId, int cap) =>
        new($"turn limit reached ({cap} turns); raise it with `offload reply {taskId} --max-turns N \"go on\"`");

    /// <summary>The events of the conversation as it stands: from the last retry or rewind on (those start a new Codex session).</summary>
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

    /// <summary>A Codex process a daemon that died left running would still be writing the worktree: end it first.</summary>
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

    /// <summary>The outcome of the last run, when Codex finished its turn but the run's end is not in the journal.</summary>
    private static EngineOutcome? UnrecordedEnd(List<AgentEvent> history, TaskInfo task)
    {
        var start = history.FindLastIndex(e => e is EngineNote { Kind: ProcessNote });
        if (start < 0 || history.Skip(start).Any(e => e is TaskFinished or CheckRan { Passed: false } or EngineNote { Kind: StoppedNote }))
        {
            return null;
        }

        var replay = new CodexStream(task.Turns, task.Model, _ => 0m);
        foreach (var raw in history.Skip(start).OfType<EngineNote>().Where(n => n.Kind == RawNote))
        {
            replay.Map(raw.Text);
        }

        return replay.Result?.ToOutcome();
    }

    /// <summary>
    /// Which session this run resumes (null: a new one) and what it says: the prompt for a new conversation; the replies
    /// written since the last run ended; or, when the last run never finished, a note that it was interrupted.
    /// Codex names its sessions itself (<c>thread.started</c>); the journal has the name from the first run on.
    /// </summary>
    private static (string? Session, string Prompt, string? Note) Session(List<AgentEvent> history, string stateDir)
    {
        var known = history.OfType<EngineNote>().LastOrDefault(n => n.Kind == SessionNote)?.Text;
        var prompt = history.OfType<TaskCreated>().FirstOrDefault()?.Prompt ?? "";
        if (known is not null && SessionExists(known, stateDir))
        {
            var lastRun = history.FindLastIndex(e => e is EngineNote { Kind: ProcessNote });
            var lastEnd = history.FindLastIndex(e => e is TaskFinished or CheckRan { Passed: false });
            if (lastEnd < lastRun)
            {
                return (known, ClaudeEngine.InterruptedPrompt, ClaudeEngine.InterruptedPrompt);
            }

            var replies = history.Skip(lastEnd + 1).OfType<UserMessage>().Where(u => u.Source != "offload").Select(u => u.Text).ToList();
            return (known, replies.Count > 0 ? string.Join("\n\n", replies) : "Go on with the task.", null);
        }

        var parts = new List<string> { prompt };
        if (history.FirstOrDefault() is TaskRewound rewound)
        {
            parts.Add($"(Offload: this task was rewound to the end of turn {rewound.Turn}; the files are as they were then, and the earlier conversation is gone.)");
        }
        else if (known is not null)
        {
            parts.Add(ClaudeEngine.LostSessionNote.Replace("Claude Code", "Codex", StringComparison.Ordinal));
        }

        parts.AddRange(history.OfType<UserMessage>().Where(u => u.Source != "offload").Select(u => u.Text));
        return (null, string.Join("\n\n", parts), null);
    }

    /// <summary>Whether Codex has a rollout for the session (<c>CODEX_HOME/sessions/Y/M/D/rollout-…-ID.jsonl</c>).</summary>
    private static bool SessionExists(string session, string stateDir)
    {
        var sessions = Path.Combine(stateDir, "sessions");
        return Directory.Exists(sessions)
               && Directory.EnumerateFiles(sessions, $"rollout-*-{session}.jsonl", SearchOption.AllDirectories).Any();
    }

    private string? Locate(CodexEngineSettings settings)
    {
        if (settings.Path is { Length: > 0 } configured)
        {
            var expanded = configured.StartsWith("~/", StringComparison.Ordinal) && getEnv("HOME") is { } home ? Path.Combine(home, configured[2..]) : configured;
            return File.Exists(expanded) ? Path.GetFullPath(expanded) : null;
        }

        return (getEnv("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "codex"))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>The basics and the names the config lists; no OpenAI key (the bridge adds it, or the config names its variable).</summary>
    private Dictionary<string, string> Environment(CodexEngineSettings settings)
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
        return environment;
    }

    private static string Last(string text, int chars) => text.Length <= chars ? text : "…" + text[^chars..];

    [LoggerMessage(Level = LogLevel.Warning, Message = "task {TaskId}: a Codex process (pid {Pid}) from before the restart was still running; it was killed")]
    private partial void LogKilledLeftover(long taskId, int pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "task {TaskId}: Codex exited with code {Exit} without finishing its turn: {Stderr}")]
    private partial void LogNoResult(long taskId, int exit, string stderr);
}
