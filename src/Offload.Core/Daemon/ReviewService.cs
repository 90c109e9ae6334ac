using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Offload.Agent;
using Offload.Config;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>
/// The way back from a finished task: merge or apply its work, throw it away, free disk, reply to it,
/// retry it, rewind it, and the full report. One verb at a time per task. A refusal changes nothing;
/// every change is a journal event, so the record of what happened to a task's work stays whole.
/// </summary>
public sealed partial class ReviewService(
    ITaskStore store,
    EventHub hub,
    GitWorkspace workspace,
    Scheduler scheduler,
    TaskService tasks,
    ModelGateway models,
    OffloadPaths paths,
    Func<OffloadConfig> config,
    TimeProvider time,
    PermissionBroker permissions)
{
    private readonly ConcurrentDictionary<long, SemaphoreSlim> _locks = new();

    public Task<MergeResponse> MergeAsync(long id, bool squash, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        var verb = "merge";
        var task = await RequireEndedAsync(id, verb, cancellationToken);
        var tip = await RequireTipAsync(task, cancellationToken);
        await RequireWorktreeCommittedAsync(task, verb, cancellationToken);
        var repo = await RepoAsync(task, cancellationToken);
        var into = repo.CurrentBranch ?? "HEAD";
        string? commit;
        try
        {
            commit = await workspace.MergeAsync(task.RepoPath, task.Branch, task.BaseCommit, squash, MergeMessage(task, squash), cancellationToken);
        }
        catch (WorkspaceException e)
        {
            throw Refusal(e, task, verb);
        }

        var mode = squash ? "squash" : "merge";
        IReadOnlyList<string> written = commit is null ? [] : Git.SplitZ(await Git.OutputAsync(
            task.RepoPath, ["diff-tree", "-r", "-z", "--name-only", "--no-renames", commit + "^", commit], cancellationToken: CancellationToken.None));
        await AppendAsync(id, new TaskMerged(mode, into, tip, commit, written), cancellationToken);
        await store.MarkSeenAsync(id, cancellationToken); // acting on it is looking at it
        return new MergeResponse(id, mode, into, commit, written);
    }, cancellationToken);

    public Task<MergeResponse> ApplyAsync(long id, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        var verb = "apply";
        var task = await RequireEndedAsync(id, verb, cancellationToken);
        var tip = await RequireTipAsync(task, cancellationToken);
        await RequireWorktreeCommittedAsync(task, verb, cancellationToken);
        IReadOnlyList<string> written;
        try
        {
            written = await workspace.ApplyAsync(task.RepoPath, task.BaseCommit, task.Branch, cancellationToken);
        }
        catch (WorkspaceException e)
        {
            throw Refusal(e, task, verb);
        }

        await AppendAsync(id, new TaskMerged("apply", task.RepoPath, tip, null, written), cancellationToken);
        await store.MarkSeenAsync(id, cancellationToken); // acting on it is looking at it
        return new MergeResponse(id, "apply", task.RepoPath, null, written);
    }, cancellationToken);

    public Task<DiscardResponse> DiscardAsync(long id, bool force, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        var task = await tasks.GetAsync(id, cancellationToken);
        if (task.Discarded)
        {
            throw new OffloadException(ErrorCodes.Conflict, $"task {id} was already discarded", $"`offload retry {id}` starts it again from its base");
        }

        var cancelled = false;
        if (!task.Status.IsFinal())
        {
            if (!force)
            {
                throw new OffloadException(ErrorCodes.Conflict,
                    $"task {id} is {task.Status.ToWire()}; discarding it would throw away work in progress, so nothing was changed",
                    $"`offload discard {id} --force` cancels it first, or `offload cancel {id}` and look at it before discarding");
            }

            task = await tasks.CancelAsync(id, cancellationToken);
            cancelled = true;
            if (!task.Status.IsFinal())
            {
                throw new OffloadException(ErrorCodes.Conflict, $"task {id} did not stop in time, so it was not discarded", $"try `offload discard {id} --force` again");
            }
        }

        var spill = Path.Combine(paths.OutputsDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var claudeState = Engines.Claude.ClaudeSandbox.StateDir(paths, id);
        var bytes = GitWorkspace.DiskUsage(task.Worktree) + GitWorkspace.DiskUsage(spill) + GitWorkspace.DiskUsage(claudeState);
        await RemoveAsync(task, deleteBranch: true, cancellationToken);
        foreach (var dir in new[] { spill, claudeState }.Where(Directory.Exists))
        {
            Directory.Delete(dir, recursive: true); // the full outputs of cut tool results; Claude Code's sessions of the task
        }

        await AppendAsync(id, new TaskDiscarded(bytes), cancellationToken);
        await store.MarkSeenAsync(id, cancellationToken); // acting on it is looking at it
        return new DiscardResponse(id, bytes, cancelled);
    }, cancellationToken);

    /// <summary>
    /// Frees the worktrees of discarded tasks, and of merged tasks whose branch has nothing since the merge and
    /// whose worktree has nothing uncommitted (their branches stay, so diff and reply still work), and forgets git's
    /// registrations of task worktrees deleted by hand (only those: the user's own worktrees are not Offload's to
    /// prune). Work that is not merged anywhere is never touched.
    /// </summary>
    public async Task<GcResponse> GcAsync(CancellationToken cancellationToken = default)
    {
        var removed = new List<GcItem>();
        var kept = new List<GcItem>();
        long? after = null;
        while (true)
        {
            var page = await store.ListTasksAsync(new TaskQuery(IncludeDiscarded: true, After: after, Limit: 500), cancellationToken);
            foreach (var listed in page.Items.Where(t => t.Status.IsFinal() && !Directory.Exists(t.Worktree) && Directory.Exists(t.RepoPath)))
            {
                // A worktree deleted by hand stays registered in git, which then refuses to delete or check out its branch.
                var forgotten = await LockedAsync(listed.Id, async () =>
                {
                    var task = await tasks.GetAsync(listed.Id, cancellationToken); // not one a reply has just sent back to work
                    return task.Status.IsFinal() && await workspace.ForgetDeletedWorktreeAsync(task.RepoPath, task.Worktree, cancellationToken);
                }, cancellationToken);
                if (forgotten)
                {
                    removed.Add(new GcItem(listed.Id, listed.Worktree, 0, "its folder was deleted by hand; unregistered from git"));
                }
            }

            foreach (var listed in page.Items.Where(t => t.Status.IsFinal() && Directory.Exists(t.Worktree)))
            {
                await LockedAsync(listed.Id, async () =>
                {
                    var task = await tasks.GetAsync(listed.Id, cancellationToken);
                    if (!task.Status.IsFinal() || !Directory.Exists(task.Worktree))
                    {
                        return;
                    }

                    var bytes = GitWorkspace.DiskUsage(task.Worktree);
                    var (free, reason) = await GcVerdictAsync(task, cancellationToken);
                    if (free)
                    {
                        await RemoveAsync(task, deleteBranch: task.Discarded, cancellationToken);
                        removed.Add(new GcItem(task.Id, task.Worktree, bytes, reason));
                    }
                    else
                    {
                        kept.Add(new GcItem(task.Id, task.Worktree, bytes, reason));
                    }
                }, cancellationToken);
            }

            if (page.Next is null)
            {
                break;
            }

            after = long.Parse(page.Next, System.Globalization.CultureInfo.InvariantCulture);
        }

        return new GcResponse(removed, kept, removed.Sum(r => r.Bytes));
    }

    private async Task<(bool Free, string Reason)> GcVerdictAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        if (task.Discarded)
        {
            return (true, "discarded");
        }

        if (!Directory.Exists(task.RepoPath))
        {
            return (false, $"its repository {task.RepoPath} is gone; `offload discard {task.Id}` frees it");
        }

        var tip = await workspace.TryResolveAsync(task.RepoPath, "refs/heads/" + task.Branch, cancellationToken);
        if (tip is null)
        {
            return (false, $"its branch {task.Branch} is gone; `offload discard {task.Id}` frees it");
        }

        var merge = (await store.ReadEventsAsync(task.Id, 0, int.MaxValue, cancellationToken))
            .OfType<TaskMerged>().LastOrDefault(m => m.Mode != "apply");
        string reason;
        if (merge is not null && merge.Tip == tip)
        {
            reason = $"merged into {merge.Into} ({merge.Mode})";
        }
        else if (await workspace.IsMergedAsync(task.RepoPath, task.Branch, cancellationToken))
        {
            reason = "its branch is contained in another branch";
        }
        else
        {
            return (false, merge is null ? "not merged" : "has commits after its merge");
        }

        try
        {
            if (!await workspace.IsCleanAsync(task.RepoPath, task.Worktree, task.Branch, cancellationToken))
            {
                return (false, "has uncommitted changes in its worktree");
            }
        }
        catch (WorkspaceException e) when (e.Code == WorkspaceErrors.Tampered)
        {
            return (false, $"its worktree's git files were changed (`offload show {task.Id}`); look at it, then `offload discard {task.Id}`");
        }

        return (true, reason);
    }

    public Task<TaskInfo> ReplyAsync(long id, ReplyRequest request, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        if (string.IsNullOrWhiteSpace(request.Text))
        {
            throw new OffloadException(ErrorCodes.BadInput, "the reply is empty", $"say what the agent should do next: `offload reply {id} \"also fix the flaky test\"`");
        }

        if (Encoding.UTF8.GetByteCount(request.Text) > TaskService.MaxPromptBytes)
        {
            throw new OffloadException(ErrorCodes.BadInput, "the reply is over 1 MiB", "put large material in a file in the worktree and point the reply at it");
        }

        TaskService.RefuseNul(request.Text, "the reply");
        if (await permissions.PendingAsync(id, cancellationToken) is { Tool: "ExitPlanMode" })
        {
            await permissions.AnswerAsync(id, false, request.Text, false, cancellationToken); // back to planning, with the user's words
            return await tasks.GetAsync(id, cancellationToken);
        }

        var task = await RequireEndedAsync(id, "reply to", cancellationToken);
        CheckCaps(request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds);
        var limits = config().WithRepository(task.RepoPath).Limits;
        if ((request.MaxTurns ?? task.MaxTurns ?? limits.MaxTurns) is { } turnCap && task.Turns >= turnCap)
        {
            throw new OffloadException(ErrorCodes.BadInput,
                $"task {id} has used {task.Turns} turns and its limit is {turnCap}, so it would stop again at once",
                $"raise the limit: `offload reply {id} --max-turns {task.Turns + Math.Max(10, task.Turns / 2)} \"…\"`");
        }

        if ((request.MaxCostUsd ?? task.MaxCostUsd ?? limits.MaxCostUsd) is { } costCap && task.Usage.CostUsd >= costCap)
        {
            throw new OffloadException(ErrorCodes.BadInput,
                $"task {id} has cost ${task.Usage.CostUsd:0.####} and its limit is ${costCap:0.####}, so it would stop again at once",
                $"raise the limit: `offload reply {id} --max-cost {Math.Ceiling(task.Usage.CostUsd * 2 + 1)} \"…\"`");
        }

        await EnsureWorktreeAsync(task, "reply to", cancellationToken);
        await RaiseCapsAsync(id, request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds, cancellationToken);
        var journal = await store.ReadEventsAsync(id, 0, int.MaxValue, cancellationToken);
        foreach (var pending in journal.Select(e => e.Subagent).Distinct().SelectMany(s => Conversation.PendingCalls(journal, s)))
        {
            // a call cut off by a cancel gets its result before the reply, where the model expects it; a subagent's too
            // (its Agent call is answered so, and it is not started again)
            await AppendAsync(id, new ToolResulted(pending.CallId, pending.Name, StoppedNote(task), IsError: true) { Subagent = pending.Subagent }, cancellationToken);
        }

        await AppendAsync(id, new UserMessage(request.Text, "reply"), cancellationToken);
        await AppendAsync(id, new StatusChanged(task.Status, OffloadTaskStatus.Queued, "reply"), cancellationToken);
        return await QueuedAsync(id, cancellationToken);
    }, cancellationToken);

    /// <summary>The task as queued, read before this wakes the scheduler, so the answer says what was done (queued) rather than how far the run got.</summary>
    private async Task<TaskInfo> QueuedAsync(long id, CancellationToken cancellationToken)
    {
        var queued = await tasks.GetAsync(id, cancellationToken);
        scheduler.Wake();
        return queued;
    }

    private static string StoppedNote(TaskInfo task) =>
        $"This tool call was stopped before it finished: the task ended ({task.Status.ToWire()}{(task.Error is null ? "" : ": " + task.Error)}). "
        + "It may or may not have taken effect: check the files before running it again.";

    public Task<TaskInfo> RetryAsync(long id, RetryRequest request, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        var task = await tasks.GetAsync(id, cancellationToken);
        if (!task.Status.IsFinal())
        {
            throw NotEnded(task, "retry");
        }

        CheckCaps(request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds);
        var model = request.Model is null ? task.Model : models.Resolve(request.Model, task.Engine);
        var events = await store.ReadEventsAsync(id, 0, int.MaxValue, cancellationToken);
        var attempt = events.OfType<AttemptStarted>().LastOrDefault()?.Number ?? 1;
        string? saved = null;
        if (Directory.Exists(task.RepoPath))
        {
            await workspace.ForgetDeletedWorktreeAsync(task.RepoPath, task.Worktree, cancellationToken); // else git keeps the branch as checked out there
            saved = await workspace.SaveAttemptAsync(task.RepoPath, task.Worktree, task.Branch, id, attempt, cancellationToken);
        }
        else if (Directory.Exists(task.Worktree))
        {
            throw new OffloadException(ErrorCodes.Repository, $"the repository of task {id} ({task.RepoPath}) is gone", $"`offload discard {id}` frees its worktree");
        }

        await RaiseCapsAsync(id, request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds, cancellationToken);
        await AppendAsync(id, new AttemptStarted(attempt + 1, model, saved is null ? null : GitWorkspace.AttemptRefName(id, attempt), saved), cancellationToken);
        await AppendAsync(id, new StatusChanged(task.Status, OffloadTaskStatus.Queued, $"retry: attempt {attempt + 1}"), cancellationToken);
        return await QueuedAsync(id, cancellationToken);
    }, cancellationToken);

    /// <summary>The checkpoints of the conversation as it stands (those a rewind took back are left out).</summary>
    public async Task<IReadOnlyList<CheckpointInfo>> CheckpointsAsync(long id, CancellationToken cancellationToken = default)
    {
        var task = await tasks.GetAsync(id, cancellationToken);
        if (task.Discarded || !Directory.Exists(task.RepoPath))
        {
            return [];
        }

        var current = Conversation.Current(await store.ReadEventsAsync(id, 0, int.MaxValue, cancellationToken))
            .OfType<CheckpointSaved>().ToDictionary(c => c.Turn, c => c.Commit);
        return (await workspace.ListCheckpointsAsync(task.RepoPath, id, cancellationToken))
            .Where(c => current.TryGetValue(c.Turn, out var sha) && sha == c.Sha)
            .Select(c => new CheckpointInfo(c.Turn, GitWorkspace.CheckpointRefName(id, c.Turn), c.Sha, c.CreatedAt, c.FilesChanged))
            .ToList();
    }

    public Task<RewindResponse> RewindAsync(long id, int turn, CancellationToken cancellationToken = default) => LockedAsync(id, async () =>
    {
        var task = await RequireEndedAsync(id, "rewind", cancellationToken);
        var checkpoints = await CheckpointsAsync(id, cancellationToken);
        var checkpoint = checkpoints.FirstOrDefault(c => c.Turn == turn)
            ?? throw new OffloadException(ErrorCodes.BadInput,
                checkpoints.Count == 0
                    ? $"task {id} has no checkpoints (they are saved after each turn that changed files)"
                    : $"task {id} has no checkpoint for turn {turn}; its checkpoints are turns {string.Join(", ", checkpoints.Select(c => c.Turn))}",
                $"`offload checkpoints {id}` lists them");
        var saved = Conversation.Current(await store.ReadEventsAsync(id, 0, int.MaxValue, cancellationToken))
            .OfType<CheckpointSaved>().Last(c => c.Turn == turn);

        await EnsureWorktreeAsync(task, "rewind", cancellationToken);
        await workspace.RewindAsync(task.RepoPath, task.Worktree, task.Branch, checkpoint.Commit, cancellationToken);
        var commit = await workspace.CommitAllAsync(task.RepoPath, task.Worktree, task.Branch, $"offload: rewind task {id} to turn {turn}", cancellationToken);
        await AppendAsync(id, new TaskRewound(turn, saved.Seq, checkpoint.Commit, commit), cancellationToken);
        return new RewindResponse(await tasks.GetAsync(id, cancellationToken), checkpoint);
    }, cancellationToken);

    /// <summary>The full report; looking at it marks a finished task seen.</summary>
    /// <param name="markSeen">Whether a finished task counts as looked at now (<c>show</c>: yes; <c>compare</c>: no).</param>
    public async Task<TaskDetails> DetailsAsync(long id, CancellationToken cancellationToken = default, bool markSeen = true)
    {
        var report = await tasks.ReportAsync(id, cancellationToken, markSeen);
        var events = await store.ReadEventsAsync(id, 0, int.MaxValue, cancellationToken);
        var attempts = new List<AttemptInfo>();
        var merges = new List<MergeRecord>();
        var restores = new List<WorktreeRestoreRecord>();
        var compactions = new List<CompactionRecord>();
        var commands = new List<CommandRun>();
        var calls = new Dictionary<string, ToolCalled>(StringComparer.Ordinal);
        var runSeconds = 0.0;
        DateTimeOffset? runningSince = null;
        var subagents = new Dictionary<string, SubagentInfo>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            if (e.Subagent is { } subId && subagents.TryGetValue(subId, out var sub))
            {
                subagents[subId] = e switch
                {
                    AssistantMessage => sub with { Turns = sub.Turns + 1 },
                    UsageRecorded u => sub with
                    {
                        InputTokens = sub.InputTokens + u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens,
                        OutputTokens = sub.OutputTokens + u.OutputTokens,
                        CostUsd = sub.CostUsd + u.CostUsd,
                    },
                    _ => sub,
                };
            }
            else if (e is ToolCalled { Subagent: null, Name: Agent.Subagents.AgentTool.ToolName } agentCall)
            {
                subagents[agentCall.CallId] = new SubagentInfo(agentCall.CallId,
                    Field(agentCall, "subagent_type") ?? Agent.Subagents.AgentTypes.GeneralPurpose, Field(agentCall, "description") ?? "", 0, 0, 0, 0m, null);
            }
            else if (e is ToolResulted { Subagent: null } agentResult && subagents.TryGetValue(agentResult.CallId, out var ended))
            {
                subagents[agentResult.CallId] = ended with { Result = agentResult.Output };
            }

            switch (e)
            {
                case TaskCreated c:
                    attempts.Add(new AttemptInfo(1, c.Model, c.At, OffloadTaskStatus.Queued, null, null, 0, 0m, null));
                    break;
                case AttemptStarted a:
                    attempts[^1] = attempts[^1] with { SavedRef = a.SavedRef };
                    attempts.Add(new AttemptInfo(a.Number, a.Model, a.At, OffloadTaskStatus.Queued, null, null, 0, 0m, null));
                    commands.Clear();
                    break;
                case StatusChanged s:
                    attempts[^1] = attempts[^1] with
                    {
                        Status = s.To,
                        Reason = s.To.IsFinal() ? s.Reason : null,
                        FinishedAt = s.To.IsFinal() ? s.At : null,
                    };
                    if (s.To == OffloadTaskStatus.Running)
                    {
                        runningSince ??= s.At;
                    }
                    else if (runningSince is { } since)
                    {
                        runSeconds += (s.At - since).TotalSeconds;
                        runningSince = null;
                    }

                    break;
                case AssistantMessage m:
                    attempts[^1] = attempts[^1] with { Turns = Math.Max(attempts[^1].Turns, m.Turn) };
                    break;
                case UsageRecorded u:
                    attempts[^1] = attempts[^1] with { CostUsd = attempts[^1].CostUsd + u.CostUsd };
                    break;
                case ToolCalled call when CommandOf(call) is not null:
                    calls[call.CallId] = call;
                    break;
                case ToolResulted result when calls.Remove(result.CallId, out var call):
                    var command = CommandOf(call)!;
                    commands.Add(new CommandRun(attempts[^1].Number, call.Turn, command, result.ExitCode, result.IsError, IsTestCommand(command), result.At));
                    break;
                case TaskMerged m:
                    merges.Add(new MergeRecord(m.Mode, m.Into, m.Commit, m.At));
                    break;
                case WorktreeRestored r:
                    restores.Add(new WorktreeRestoreRecord(r.At, r.BranchCommit, r.Turn, r.Checkpoint));
                    break;
                case ContextCompacted c:
                    compactions.Add(new CompactionRecord(c.Attempt, c.At, c.Turn, c.Reason, c.Window, c.TokensBefore, c.TokensAfter, c.Cleared.Count, c.Summary is not null));
                    break;
            }
        }

        if (runningSince is { } stillRunning)
        {
            runSeconds += (time.GetUtcNow() - stillRunning).TotalSeconds;
        }

        var current = Conversation.Current(events);
        var plan = TaskPlan.From(current);
        var proposed = plan.PlanMode ? current.OfType<PlanProposed>().LastOrDefault()?.Plan : null;
        var approved = current.OfType<PlanApproved>().LastOrDefault();
        return new TaskDetails(report.Task, report.Files, commands, attempts, merges, Math.Round(runSeconds, 3), restores,
            plan.Items, proposed, approved?.Plan, compactions, [.. subagents.Values], approved?.AllowedPrompts,
            [.. events.OfType<CheckRan>()]);
    }

    private static string? Field(ToolCalled call, string name) =>
        call.Input.ValueKind == System.Text.Json.JsonValueKind.Object && call.Input.TryGetProperty(name, out var value)
        && value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString() : null;

    private static string? CommandOf(ToolCalled call) =>
        call.Name == "Bash" && call.Input.ValueKind == System.Text.Json.JsonValueKind.Object
        && call.Input.TryGetProperty("command", out var command) && command.ValueKind == System.Text.Json.JsonValueKind.String
            ? command.GetString()
            : null;

    /// <summary>Whether a shell command looks like a test run: a test runner, or a build tool's test verb.</summary>
    public static bool IsTestCommand(string command) => TestCommand().IsMatch(command);

    [GeneratedRegex(
        @"(?<![\w.-])(pytest|py\.test|jest|vitest|mocha|rspec|phpunit|ctest|tox|nox|unittest|bats)(?![\w-])"
        + @"|(?<![\w.-])(go|cargo|dotnet|npm|pnpm|yarn|bun|deno|mvn|\./mvnw|gradle|\./gradlew|mix|swift|zig|make|rake|sbt|lein|flutter|dart)(\s+(run|-C\s+\S+))?\s+(test|tests|check|spec)(?![\w-])"
        + @"|(?<![\w.-])(test_\w+|\w+_test|\w+\.test|\w+\.spec)\.(py|js|ts|go|rb|sh)(?![\w-])",
        RegexOptions.IgnoreCase)]
    private static partial Regex TestCommand();

    private async Task<TaskInfo> RequireEndedAsync(long id, string verb, CancellationToken cancellationToken)
    {
        var task = await tasks.GetAsync(id, cancellationToken);
        if (task.Discarded)
        {
            throw new OffloadException(ErrorCodes.Conflict, $"task {id} was discarded: its worktree and branch are gone, so there is nothing to {verb}",
                $"`offload retry {id}` starts it again from its base");
        }

        if (!task.Status.IsFinal())
        {
            throw NotEnded(task, verb);
        }

        return task;
    }

    private static OffloadException NotEnded(TaskInfo task, string verb) => new(ErrorCodes.Conflict,
        $"task {task.Id} is {task.Status.ToWire()}; you can {verb} it once it has ended, and nothing was changed",
        task.Status == OffloadTaskStatus.NeedsInput
            ? $"it waits for an answer: `offload show {task.Id}`, then `offload approve {task.Id}` or `offload deny {task.Id}`"
            : $"`offload wait {task.Id}` waits for it; `offload cancel {task.Id}` stops it");

    private async Task<string> RequireTipAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(task.RepoPath))
        {
            throw new OffloadException(ErrorCodes.Repository, $"the repository of task {task.Id} ({task.RepoPath}) is gone");
        }

        return await workspace.TryResolveAsync(task.RepoPath, "refs/heads/" + task.Branch, cancellationToken)
            ?? throw new OffloadException(ErrorCodes.Conflict,
                task.Status == OffloadTaskStatus.Succeeded || task.Turns > 0
                    ? $"the branch of task {task.Id} ({task.Branch}) is gone from {task.RepoPath}; nothing was changed"
                    : $"task {task.Id} has no branch yet; it never ran",
                $"`offload retry {task.Id}` starts it again");
    }

    /// <summary>
    /// Merge and apply take the task's branch: work that is only in its worktree (a commit that failed, the user's own
    /// edits there) would be left out without a word, so they refuse until it is on the branch or put aside.
    /// </summary>
    private async Task RequireWorktreeCommittedAsync(TaskInfo task, string verb, CancellationToken cancellationToken)
    {
        var setup = Directory.Exists(task.Worktree) ? await GitWorkspace.SetupCreatedAsync(task.RepoPath, task.Worktree, cancellationToken) : [];
        var files = (await workspace.UncommittedFilesAsync(task.Worktree, cancellationToken)).Where(f => !GitWorkspace.IsSetupCreated(setup, f)).ToList();
        if (files.Count == 0)
        {
            return;
        }

        var named = files.Count <= 10 ? string.Join(", ", files) : string.Join(", ", files.Take(10)) + $" and {files.Count - 10} more";
        var worktree = task.Worktree;
        throw new OffloadException(ReviewErrors.UncommittedWork,
            $"the worktree of task {task.Id} has changes not on its branch {task.Branch}: {named}; {verb} takes the branch and would leave them out, so nothing was changed",
            $"to keep them, commit them onto the branch (`git -C {worktree} add -A && git -C {worktree} commit -m \"…\"`, "
            + $"or `offload reply {task.Id} \"…\"`, whose run ends by committing them); to leave them out, `git -C {worktree} stash -u`; "
            + $"then `offload {verb} {task.Id}` again");
    }

    private async Task<RepoInfo> RepoAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        try
        {
            return await workspace.ResolveRepoAsync(task.RepoPath, null, cancellationToken);
        }
        catch (WorkspaceException e)
        {
            throw new OffloadException(ErrorCodes.Repository, e.Message);
        }
    }

    /// <summary>A workspace refusal as the API says it: what, which files, and what to type next.</summary>
    private static OffloadException Refusal(WorkspaceException e, TaskInfo task, string verb) => e.Code switch
    {
        WorkspaceErrors.DirtyTree => new(ReviewErrors.DirtyTree, e.Message,
            $"`git stash -u && offload {verb} {task.Id} && git stash pop`"),
        WorkspaceErrors.Conflict => new(ReviewErrors.MergeConflict, e.Message,
            $"`offload reply {task.Id} \"merge your base branch into your branch and resolve the conflicts\"`, then `offload {verb} {task.Id}` again"),
        WorkspaceErrors.DetachedHead => new(ReviewErrors.DetachedHead, e.Message,
            $"`git switch BRANCH`, then `offload merge {task.Id}`; or `offload apply {task.Id}` to get the changes uncommitted"),
        WorkspaceErrors.NoCommits or WorkspaceErrors.NotARepo => new(ErrorCodes.Repository, e.Message),
        WorkspaceErrors.BranchMissing => new(ErrorCodes.Conflict, e.Message, $"`offload retry {task.Id}` starts it again"),
        _ => new(ErrorCodes.Repository, e.Message),
    };

    private static string MergeMessage(TaskInfo task, bool squash)
    {
        var subject = squash ? task.Title : $"Merge offload task {task.Id}: {task.Title}";
        var body = task.Summary is { Length: > 0 } summary ? "\n\n" + summary.Trim() : "";
        return $"{subject}{body}\n\nOffload task {task.Id} · branch {task.Branch} · model {task.Model}";
    }

    /// <summary>The worktree back after <c>gc</c> freed it or a hand deleted it (<see cref="WorktreeRecovery"/>).</summary>
    private async Task EnsureWorktreeAsync(TaskInfo task, string verb, CancellationToken cancellationToken)
    {
        if (Directory.Exists(task.Worktree) || await workspace.TryResolveAsync(task.RepoPath, "refs/heads/" + task.Branch, cancellationToken) is not { } tip)
        {
            return; // present, or never created: the runner creates it
        }

        WorktreeRestored restored;
        try
        {
            restored = await WorktreeRecovery.RecreateAsync(
                workspace, task, tip, await store.ReadEventsAsync(task.Id, 0, int.MaxValue, cancellationToken), cancellationToken);
        }
        catch (WorkspaceException e) when (e.Code == WorkspaceErrors.BranchCheckedOut)
        {
            throw new OffloadException(ErrorCodes.Conflict, e.Message, $"switch that checkout to another branch, then `offload {verb} {task.Id}` again");
        }

        await AppendAsync(task.Id, restored, cancellationToken);
    }

    private async Task RemoveAsync(TaskInfo task, bool deleteBranch, CancellationToken cancellationToken)
    {
        if (Directory.Exists(task.RepoPath))
        {
            await workspace.RemoveWorktreeAsync(task.RepoPath, task.Worktree, task.Branch, deleteBranch, cancellationToken);
        }
        else if (Directory.Exists(task.Worktree))
        {
            Directory.Delete(task.Worktree, recursive: true); // its repository is gone, and with it the branch
        }
    }

    private static void CheckCaps(int? maxTurns, decimal? maxCostUsd, int? timeoutSeconds)
    {
        if (maxTurns is <= 0 || maxCostUsd is <= 0 || timeoutSeconds is <= 0)
        {
            throw new OffloadException(ErrorCodes.BadInput, "limits must be positive", "e.g. --max-turns 50, --max-cost 2.50, --timeout 30m");
        }
    }

    private async Task RaiseCapsAsync(long id, int? maxTurns, decimal? maxCostUsd, int? timeoutSeconds, CancellationToken cancellationToken)
    {
        if (maxTurns is not null || maxCostUsd is not null || timeoutSeconds is not null)
        {
            await AppendAsync(id, new LimitsChanged(maxTurns, maxCostUsd, timeoutSeconds), cancellationToken);
        }
    }

    private async Task AppendAsync(long id, AgentEvent e, CancellationToken cancellationToken) =>
        hub.Publish(await store.AppendUnfencedAsync(id, e, cancellationToken));

    private Task LockedAsync(long id, Func<Task> action, CancellationToken cancellationToken) =>
        LockedAsync(id, async () =>
        {
            await action();
            return true;
        }, cancellationToken);

    private async Task<T> LockedAsync<T>(long id, Func<Task<T>> action, CancellationToken cancellationToken)
    {
        var gate = _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            return await action();
        }
        finally
        {
            gate.Release();
        }
    }
}

/// <summary>The API codes of a refused merge or apply; the CLI exits with <c>11</c> for each.</summary>
public static class ReviewErrors
{
    public const string DirtyTree = "dirty_tree";
    public const string MergeConflict = "merge_conflict";
    public const string DetachedHead = "detached_head";
    public const string UncommittedWork = "uncommitted_work";
}
