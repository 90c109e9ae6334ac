using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Offload.Agent;
using Offload.Config;
using Offload.Engines;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon;

/// <summary>
/// Takes queued tasks, oldest first, up to <c>maxParallel</c> at once, and hands each to a
/// <see cref="Runner"/>. At start it finds the tasks a previous daemon left running and queues
/// them again, so they resume from their journals; a task the daemon stopped on again and again without
/// progress ends failed instead (<see cref="LimitSettings.MaxRestarts"/>). Every run ends in a final status:
/// one that throws ends failed with the reason, and one whose write the store could not make (a full disk)
/// waits, holding nothing, until a write can be made, then resumes.
/// </summary>
public sealed partial class Scheduler(
    ITaskStore store,
    EventHub hub,
    Runner runner,
    IEnumerable<IEngine> engines,
    Func<OffloadConfig> config,
    TimeProvider time,
    ILogger<Scheduler> logger) : BackgroundService
{
    /// <summary>The reason of the requeue a daemon start makes; the restarts without progress are counted by it.</summary>
    public const string ResumeReason = "resuming after a daemon restart";

    /// <summary>How often tasks that wait for the store look again; the pause grows for a task that keeps failing.</summary>
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetryPause = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _wake = new(0);
    private readonly ConcurrentDictionary<long, RunHandle> _running = new();
    private readonly CancellationTokenSource _softStop = new();
    private readonly Dictionary<string, IEngine> _engines = engines.ToDictionary(e => e.Name, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, Waiting> _waiting = new(); // tasks whose write the store could not make
    private readonly ConcurrentDictionary<long, int> _storeFailures = new(); // in a row, per task: the retry pause grows with them

    public IReadOnlyCollection<string> EngineNames => _engines.Keys;

    public bool HasEngine(string name) => _engines.ContainsKey(name);

    public int RunningCount => _running.Count;

    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RecoverAsync(stoppingToken);
            while (!stoppingToken.IsCancellationRequested)
            {
                await ResumeWaitingAsync(stoppingToken);
                await StartQueuedAsync(stoppingToken);
                if (_waiting.IsEmpty)
                {
                    await _wake.WaitAsync(stoppingToken);
                }
                else
                {
                    await _wake.WaitAsync(RetryInterval, stoppingToken); // a retry schedule: space comes back without a word
                }

                // One look at the queue serves every wake so far (100 tasks submitted at once wake it 100 times).
                while (_wake.Wait(0))
                {
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Tasks found running belonged to a daemon that died or stopped: queue them to resume. So do tasks
    /// parked on a question: their resumed run asks it again (or finds the answer given meanwhile).
    /// </summary>
    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var task in await store.TasksInStatusAsync([OffloadTaskStatus.Running, OffloadTaskStatus.NeedsInput], cancellationToken))
        {
            var crashLoop = task.Status == OffloadTaskStatus.Running ? await CrashLoopAsync(task, cancellationToken) : null;
            try
            {
                if (crashLoop is not null)
                {
                    LogCrashLoop(task.Id, crashLoop);
                    await EndAsync(task, OffloadTaskStatus.Failed, crashLoop, cancellationToken);
                    continue;
                }

                LogResuming(task.Id);
                hub.Publish(await store.AppendUnfencedAsync(task.Id, new StatusChanged(task.Status, OffloadTaskStatus.Queued, ResumeReason), cancellationToken));
            }
            catch (Exception e) when (IsStoreFailure(e))
            {
                Wait(task.Id, new Waiting(e, ResumeReason, crashLoop is null ? null : (OffloadTaskStatus.Failed, crashLoop)));
            }
        }
    }

    /// <summary>
    /// The reason to give up on a task found running at start: the daemon has now stopped <see cref="LimitSettings.MaxRestarts"/>
    /// times in a row while running it, with no progress in between (no model answer or tool result stored). Null to resume it.
    /// </summary>
    private async Task<string?> CrashLoopAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        var max = config().Limits.MaxRestarts;
        if (max <= 0)
        {
            return null; // no cap
        }

        var events = await store.ReadEventsAsync(task.Id, 0, int.MaxValue, cancellationToken);
        var restarts = 1; // this one
        for (var i = events.Count - 1; i >= 0 && events[i] is not (AssistantMessage or ToolResulted { Output: not Conversation.InterruptedNote }); i--)
        {
            if (events[i] is StatusChanged { From: OffloadTaskStatus.Running, To: OffloadTaskStatus.Queued, Reason: ResumeReason })
            {
                restarts++;
            }
        }

        if (restarts < max || events.Count == 0)
        {
            return null;
        }

        var last = events[^1];
        var what = last switch
        {
            ToolCalled c => $"a call of {c.Name} {Shorten(c.Input.GetRawText())}",
            StatusChanged s => $"the status {s.From.ToWire()} → {s.To.ToWire()}{(s.Reason is null ? "" : $" ({s.Reason})")}",
            _ => $"a {last.GetType().Name} event",
        };
        return $"the daemon stopped {restarts} times while running this task without progress (no model answer or tool result " +
               $"stored in between); last on record: {what} (event {last.Seq}). The task itself may stop it: `offload logs {task.Id}` " +
               $"shows the journal, `offload retry {task.Id}` runs it again (limits.maxRestarts is {max})";
    }

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..119] + "…";

    /// <summary>Ends a task that no run holds with a final status, its finish and status in one write.</summary>
    private async Task EndAsync(TaskInfo task, OffloadTaskStatus status, string reason, CancellationToken cancellationToken)
    {
        foreach (var e in await store.AppendAllAsync(task.Id, task.Attempt,
                     [new TaskFinished(status, null, reason, null), new StatusChanged(task.Status, status, reason)], cancellationToken))
        {
            hub.Publish(e);
        }
    }

    private static bool IsStoreFailure(Exception e) => e is DiskFullException or StoreWriteException;

    /// <summary>Sets a task aside until the store can write again (see <see cref="ResumeWaitingAsync"/>); the pause grows with each failure in a row.</summary>
    private void Wait(long taskId, Waiting waiting)
    {
        var failures = _storeFailures.AddOrUpdate(taskId, 1, (_, n) => n + 1);
        var pause = TimeSpan.FromTicks(Math.Min(MaxRetryPause.Ticks, RetryInterval.Ticks << Math.Min(failures - 1, 16)));
        _waiting[taskId] = waiting with { NotBefore = time.GetUtcNow() + pause };
        LogWaitingForStore(waiting.Cause, taskId, waiting.Cause.Message, pause);
        Wake();
    }

    /// <summary>
    /// Tasks set aside because a write failed go on once one can be made (a full disk has room again): queued to resume
    /// from their journals, or given the final status that could not be written (a cancel, a failure).
    /// </summary>
    private async Task ResumeWaitingAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, waiting) in _waiting)
        {
            if (_running.ContainsKey(id) || time.GetUtcNow() < waiting.NotBefore
                || (waiting.Cause is DiskFullException full && DiskFullException.IsFull(full.Path)))
            {
                continue; // its run is still on its way out, or it is too early, or the disk is still full
            }

            try
            {
                if (await store.GetTaskAsync(id, cancellationToken) is { } task && !task.Status.IsFinal())
                {
                    if (waiting.Final is var (status, reason))
                    {
                        await EndAsync(task, status, reason, cancellationToken);
                    }
                    else if (task.Status != OffloadTaskStatus.Queued)
                    {
                        hub.Publish(await store.AppendUnfencedAsync(id, new StatusChanged(task.Status, OffloadTaskStatus.Queued, waiting.Reason), cancellationToken));
                    }
                }

                _waiting.TryRemove(id, out _);
                LogStoreWritesAgain(id);
            }
            catch (Exception e) when (IsStoreFailure(e))
            {
                Wait(id, waiting with { Cause = e });
            }
        }
    }

    private async Task StartQueuedAsync(CancellationToken cancellationToken)
    {
        var max = Math.Max(1, config().MaxParallel);
        if (_running.Count >= max || !_waiting.IsEmpty)
        {
            return; // while a write waits for the store, a new run would only meet the same full disk
        }

        foreach (var task in await store.TasksInStatusAsync([OffloadTaskStatus.Queued], cancellationToken))
        {
            if (_running.Count >= max || _softStop.IsCancellationRequested)
            {
                break;
            }

            if (_running.ContainsKey(task.Id))
            {
                continue;
            }

            var handle = new RunHandle(CancellationTokenSource.CreateLinkedTokenSource(cancellationToken));
            _running[task.Id] = handle;
            handle.Completion = Task.Run(async () =>
            {
                try
                {
                    var engine = _engines.GetValueOrDefault(task.Engine)
                                 ?? throw new InvalidOperationException($"this daemon has no engine named '{task.Engine}'");
                    await runner.RunAsync(task, engine, handle.Cancel.Token, _softStop.Token, () => handle.UserCancelled);
                    _storeFailures.TryRemove(task.Id, out _);
                }
                catch (Exception e) when (IsStoreFailure(e))
                {
                    // Nothing after the failed write is on record, as after a crash: the task resumes from its journal when a write can be made.
                    Wait(task.Id, new Waiting(e, $"resuming: the store can write again (it could not: {e.Message})",
                        handle.UserCancelled ? (OffloadTaskStatus.Cancelled, "cancelled by the user") : null));
                }
                catch (Exception e) when (!_softStop.IsCancellationRequested)
                {
                    LogRunCrashed(e, task.Id);
                    await FailAsync(task.Id, $"internal error: {e.Message}");
                }
                catch (Exception e)
                {
                    LogRunCrashed(e, task.Id); // the daemon is stopping: the task stays running and resumes at the next start
                }
                finally
                {
                    _running.TryRemove(task.Id, out _);
                    handle.Cancel.Dispose();
                    Wake();
                }
            }, CancellationToken.None);
        }
    }

    /// <summary>The last word on a run that threw: the task ends failed with the reason, or waits to, when the store cannot write now.</summary>
    private async Task FailAsync(long taskId, string reason)
    {
        try
        {
            if (await store.GetTaskAsync(taskId) is { } task && !task.Status.IsFinal())
            {
                await EndAsync(task, OffloadTaskStatus.Failed, reason, CancellationToken.None);
            }
        }
        catch (Exception e) when (IsStoreFailure(e))
        {
            Wait(taskId, new Waiting(e, "", (OffloadTaskStatus.Failed, reason)));
        }
        catch (Exception e)
        {
            LogFinalWriteFailed(e, taskId, reason); // the task stays running: the next daemon start resumes it
        }
    }

    public async Task CancelAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        if (_running.TryGetValue(task.Id, out var handle))
        {
            handle.UserCancelled = true;
            await handle.Cancel.CancelAsync();
            await handle.Completion!.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return;
        }

        foreach (var e in new AgentEvent[]
                 {
                     new TaskFinished(OffloadTaskStatus.Cancelled, null, "cancelled by the user", null),
                     new StatusChanged(task.Status, OffloadTaskStatus.Cancelled, "cancelled by the user"),
                 })
        {
            hub.Publish(await store.AppendUnfencedAsync(task.Id, e, cancellationToken));
        }
    }

    /// <summary>Tells the runs to end at their next safe point; called as soon as the daemon begins to stop.</summary>
    public void BeginStop() => _softStop.Cancel();

    /// <summary>Graceful stop: runs end at their next safe point (they resume at the next start), then the rest are cut.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _softStop.CancelAsync();
        var all = _running.Values.Select(h => h.Completion!).ToArray();
        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await base.StopAsync(cancellationToken);
    }

    private sealed class RunHandle(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;
        public Task? Completion { get; set; }
        public volatile bool UserCancelled;
    }

    /// <summary>A task set aside because the store could not write: what failed, then what to do once a write can be made.</summary>
    /// <param name="Reason">The reason of the requeue that resumes it.</param>
    /// <param name="Final">The final status to write instead of resuming it, when that is what could not be written.</param>
    private sealed record Waiting(Exception Cause, string Reason, (OffloadTaskStatus Status, string Reason)? Final)
    {
        public DateTimeOffset NotBefore { get; init; }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "task {TaskId} was running when the daemon stopped; resuming it")]
    private partial void LogResuming(long taskId);

    [LoggerMessage(Level = LogLevel.Error, Message = "task {TaskId} ends failed: {Reason}")]
    private partial void LogCrashLoop(long taskId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "the run of task {TaskId} crashed")]
    private partial void LogRunCrashed(Exception e, long taskId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "task {TaskId} waits for the store ({Why}); trying again in {Pause}")]
    private partial void LogWaitingForStore(Exception e, long taskId, string why, TimeSpan pause);

    [LoggerMessage(Level = LogLevel.Information, Message = "the store writes again: task {TaskId} goes on")]
    private partial void LogStoreWritesAgain(long taskId);

    [LoggerMessage(Level = LogLevel.Critical, Message = "task {TaskId} could not be given its final status ({Reason}); it stays running until the next daemon start")]
    private partial void LogFinalWriteFailed(Exception e, long taskId, string reason);
}
