using Microsoft.Extensions.Logging;
using Offload.Config;
using Offload.Engines;
using Offload.Models;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>
/// One run attempt of one task: take the attempt number, make sure the worktree exists, let
/// the engine work, commit whatever changed on the task branch, record how it ended.
/// </summary>
public sealed partial class Runner(
    ITaskStore store,
    EventHub hub,
    GitWorkspace workspace,
    OffloadPaths paths,
    Func<OffloadConfig> config,
    TimeProvider time,
    ILogger<Runner> logger,
    Telemetry.OffloadTelemetry? telemetry = null)
{
    /// <summary>
    /// Runs one attempt to its final status, or leaves the task <c>running</c> to be resumed from its journal: when the
    /// daemon stops, or when the store cannot write (<see cref="DiskFullException"/>, <see cref="StoreWriteException"/>:
    /// thrown to the <see cref="Scheduler"/>, which resumes the task once a write can be made; nothing after the failed
    /// write is on record, as after a crash). Any other exception from this method is a bug the scheduler records as the
    /// task's failure.
    /// </summary>
    public async Task RunAsync(TaskInfo task, IEngine engine, CancellationToken cancel, CancellationToken softStop, Func<bool> userCancelled)
    {
        // The attempt and its "running" in one write: with many tasks starting at once, they share the group commit.
        var running = await store.BeginAttemptAsync(task.Id, new StatusChanged(task.Status, OffloadTaskStatus.Running), CancellationToken.None);
        hub.Publish(running);
        var journal = new Journal(store, hub, task.Id, running.Attempt);
        using var spans = telemetry?.StartRun(task, engine.Name, running.Attempt, running.Seq);
        var history = await store.ReadEventsAsync(task.Id, 0, (int)(running.Seq - 1), CancellationToken.None); // the journal before this attempt
        OffloadConfig settings;
        try
        {
            settings = config().WithRepository(task.RepoPath);
        }
        catch (ConfigException e)
        {
            // The repository's .offload/config.json stopped parsing after the task was queued: say so, and where.
            await FinishAsync(task, journal, new EngineOutcome.Failed($"{e.Message}; {e.Hint}"), unchanged: false);
            return;
        }

        var timeout = task.TimeoutSeconds ?? settings.Limits.TimeoutSeconds;
        using var deadline = timeout is { } seconds ? new CancellationTokenSource(TimeSpan.FromSeconds(seconds), time) : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, deadline.Token);
        var clock = new WallClock(deadline, timeout is { } limit ? TimeSpan.FromSeconds(limit) : null, time);
        EngineOutcome outcome;
        var worktreeMade = Task.FromResult(false);
        string? setupFailed = null;
        try
        {
            var spill = Path.Combine(paths.OutputsDir, task.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Directory.CreateDirectory(spill);
            var path = Path.GetFullPath(task.Worktree);
            if (settings.Setup.Count > 0)
            {
                // Setup runs before the agent starts: the worktree first, then its commands, in a folder made now (or made
                // again) or where an earlier attempt did not finish them.
                var existed = Directory.Exists(task.Worktree);
                worktreeMade = Task.FromResult(await EnsureWorktreeAsync(task, history, journal, linked.Token));
                setupFailed = !existed || !TaskSetup.Done(history)
                    ? await TaskSetup.RunAsync(task, path, spill, settings, workspace, journal, linked.Token)
                    : null;
            }
            else
            {
                // Not awaited here: the engine's first model call needs no files, so it goes out while git checks the worktree out.
                worktreeMade = EnsureWorktreeAsync(task, history, journal, linked.Token);
            }

            if (setupFailed is not null)
            {
                outcome = new EngineOutcome.Failed(setupFailed);
            }
            else
            {
                var run = new EngineRun(task, path, history, journal, settings, spill, time.GetUtcNow(), softStop)
                {
                    TurnEnded = (turn, ct) => Checkpoints.SaveAsync(workspace, journal, task, turn, ct),
                    Clock = clock,
                    WorktreeReady = worktreeMade,
                    Telemetry = spans,
                };
                outcome = await RunEngineAsync(engine, run, linked.Token);
                outcome = await CheckAsync(engine, run, outcome, linked.Token);
            }
        }
        catch (Exception e) when (userCancelled() && e is not StaleAttemptException)
        {
            outcome = new EngineOutcome.Cancelled(); // however the cut shows (a git killed mid-worktree, a closed stream), the user cancelled
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancel.IsCancellationRequested)
        {
            outcome = new EngineOutcome.Limited($"wall-clock limit reached ({TimeSpan.FromSeconds(timeout!.Value)})");
        }
        catch (OperationCanceledException)
        {
            outcome = new EngineOutcome.Suspended();
        }
        catch (StaleAttemptException)
        {
            return; // another attempt owns the task now
        }
        catch (Exception e) when (DiskFullException.Find(e, paths.DataDir) is { } full)
        {
            throw full; // a journal write, the worktree or a spill file found no room: the scheduler resumes the task when there is
        }
        catch (StoreWriteException)
        {
            throw;
        }
        catch (ModelCallException e)
        {
            outcome = new EngineOutcome.Failed(e.Message);
        }
        catch (ModelConfigException e)
        {
            outcome = new EngineOutcome.Failed(e.Message);
        }
        catch (WorkspaceException e)
        {
            outcome = new EngineOutcome.Failed(e.Message);
        }
        catch (Exception e)
        {
            LogEngineCrashed(e, task.Id);
            outcome = new EngineOutcome.Failed($"internal error: {e.Message}");
        }

        if (outcome is EngineOutcome.Suspended)
        {
            await (spans?.EndAsync(store) ?? Task.CompletedTask);
            return; // the status stays running: the next daemon start resumes it from the journal
        }

        // A worktree made by this run, whose engine ran no tool that writes, is still the clean checkout: no git status.
        // A failed setup commits nothing: what it left is setup's, not the task's work.
        var unchanged = setupFailed is not null || outcome.FilesUntouched && worktreeMade is { IsCompletedSuccessfully: true, Result: true };
        await FinishAsync(task, journal, outcome, unchanged);
        await (spans?.EndAsync(store) ?? Task.CompletedTask);
    }

    /// <summary>
    /// Runs the engine while the worktree is being made (<see cref="EngineRun.WorktreeReady"/>). A worktree that cannot be
    /// made ends the run with git's reason, cutting short a model call in flight; the run never ends before the
    /// worktree is settled, so no git is still checking out when the finish is committed.
    /// </summary>
    private static async Task<EngineOutcome> RunEngineAsync(IEngine engine, EngineRun run, CancellationToken cancellationToken)
    {
        var worktree = run.WorktreeReady;
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = engine.RunAsync(run, cut.Token);
        if (await Task.WhenAny(running, worktree) == worktree && !worktree.IsCompletedSuccessfully)
        {
            await cut.CancelAsync();
            await ((Task)running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await worktree; // throws what went wrong
        }

        EngineOutcome outcome;
        try
        {
            outcome = await running;
        }
        finally
        {
            await worktree.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await worktree; // even an answer given without touching a file needs the task's branch and worktree
        return outcome;
    }

    /// <summary>
    /// The task's check (<see cref="TaskCheck"/>) after each final answer: passed, the answer stands; failed with tries
    /// left, its output goes back to the agent and the engine runs on in this attempt; failed on the last try, the task
    /// fails. The failure and the message that answers it are written together, so a resume finds either both or neither.
    /// </summary>
    private async Task<EngineOutcome> CheckAsync(IEngine engine, EngineRun run, EngineOutcome outcome, CancellationToken cancellationToken)
    {
        var task = run.Task;
        var tries = task.CheckTries ?? run.Config.CheckTries ?? OffloadConfig.DefaultCheckTries;
        while (outcome is EngineOutcome.Succeeded succeeded && task.Check is not null)
        {
            if (run.SoftStop.IsCancellationRequested)
            {
                return new EngineOutcome.Suspended(); // the resumed run gives the answer again (from the journal) and checks it
            }

            var check = await TaskCheck.RunAsync(task, run.Worktree, run.SpillDir, run.Config,
                TaskCheck.TriesSoFar(await run.Journal.ReadAllAsync(cancellationToken)) + 1, cancellationToken);
            if (check.Passed || check.Try >= tries)
            {
                await run.Journal.AppendAsync(check, cancellationToken);
                return check.Passed
                    ? outcome with { FilesUntouched = false } // the check ran in the worktree
                    : new EngineOutcome.Failed(TaskCheck.FailureReason(check, tries), succeeded.Summary);
            }

            await run.Journal.AppendAllAsync([check, new UserMessage(TaskCheck.FailureMessage(check, tries), TaskCheck.Source)], cancellationToken);
            task = await store.GetTaskAsync(task.Id, CancellationToken.None) ?? task; // its turns and cost so far: the engine goes on from them
            run = run with { Task = task, History = await run.Journal.ReadAllAsync(cancellationToken) };
            outcome = await RunEngineAsync(engine, run, cancellationToken);
        }

        return outcome;
    }

    /// <summary>
    /// True when the worktree was made now: a clean checkout of its branch, with nothing to commit yet. A task that ran
    /// before and whose folder is gone (deleted while the daemon was down) gets it back from its branch and last
    /// checkpoint (<see cref="WorktreeRecovery"/>), journalled.
    /// </summary>
    private async Task<bool> EnsureWorktreeAsync(TaskInfo task, IReadOnlyList<AgentEvent> history, Journal journal, CancellationToken cancellationToken)
    {
        if (Directory.Exists(task.Worktree))
        {
            return false;
        }

        if (history.Any(e => e is StatusChanged { To: OffloadTaskStatus.Running })
            && await workspace.TryResolveAsync(task.RepoPath, "refs/heads/" + task.Branch, cancellationToken) is { } tip)
        {
            await journal.AppendAsync(await WorktreeRecovery.RecreateAsync(workspace, task, tip, history, cancellationToken), cancellationToken);
            return false;
        }

        var name = Path.GetFileName(task.Worktree);
        var slug = name[(name.IndexOf('-', StringComparison.Ordinal) + 1)..];
        await workspace.CreateWorktreeAsync(task.RepoPath, Path.GetDirectoryName(task.Worktree)!, task.Id, slug, task.BaseCommit, cancellationToken);
        return true;
    }

    /// <param name="unchanged">The worktree is known to be as it was checked out: there is nothing to commit.</param>
    private async Task FinishAsync(TaskInfo task, Journal journal, EngineOutcome outcome, bool unchanged)
    {
        string? commit = null;
        var reason = outcome.Reason;
        var status = outcome.Status;
        try
        {
            // A daemon killed while committing leaves its git running a moment longer, holding the index lock.
            for (var tries = 1; !unchanged && Directory.Exists(task.Worktree); tries++)
            {
                try
                {
                    commit = await workspace.CommitAllAsync(task.RepoPath, task.Worktree, task.Branch, CommitMessage(task, outcome), CancellationToken.None);
                    break;
                }
                catch (WorkspaceException e) when (tries < 5 && e.Message.Contains("index.lock", StringComparison.Ordinal))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * tries), time);
                }
            }
        }
        catch (WorkspaceException e)
        {
            // Work that is not on the branch never reads as done: merge and apply take the branch.
            status = OffloadTaskStatus.Failed;
            reason = $"{reason}; committing the worktree failed: {e.Message.Split('\n')[0].TrimEnd()} "
                + $"The work is still in the worktree {task.Worktree}, not on branch {task.Branch}. Remove the cause "
                + $"(a stale index.lock: delete it if no git is running), then `offload reply {task.Id} \"commit your work\"`: "
                + "the run ends by committing the worktree.";
            reason = reason.TrimStart(';', ' ');
            await journal.AppendAsync(new ErrorRaised("commit failed", e.Message));
        }

        // Together or not at all: a finish on record with the task still running would be finished twice on resume.
        await journal.AppendAllAsync(
            [new TaskFinished(status, outcome.Summary, reason, commit), new StatusChanged(OffloadTaskStatus.Running, status, reason)]);
    }

    private static string CommitMessage(TaskInfo task, EngineOutcome outcome)
    {
        var body = outcome.Summary ?? outcome.Reason ?? "";
        return $"{task.Title}\n\nOffload task {task.Id} ({outcome.Status.ToWire()}), model {task.Model}.\n\n{body}".TrimEnd();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "the engine of task {TaskId} crashed")]
    private partial void LogEngineCrashed(Exception e, long taskId);
}
