using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Offload.Config;
using Offload.Engines;
using Offload.Protocol;
using Offload.Store;

namespace Offload.Daemon;

/// <summary>
/// Takes queued tasks, oldest first, up to <c>maxParallel</c> at once, and hands each to a
/// <see cref="Runner"/>. At start it finds the tasks a previous daemon left running and queues
/// them again, so they resume from their journals.
/// </summary>
public sealed partial class Scheduler(
    ITaskStore store,
    EventHub hub,
    Runner runner,
    IEnumerable<IEngine> engines,
    Func<OffloadConfig> config,
    ILogger<Scheduler> logger) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0);
    private readonly ConcurrentDictionary<long, RunHandle> _running = new();
    private readonly CancellationTokenSource _softStop = new();
    private readonly Dictionary<string, IEngine> _engines = engines.ToDictionary(e => e.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> EngineNames => _engines.Keys;

    public bool HasEngine(string name) => _engines.ContainsKey(name);

    public int RunningCount => _running.Count;

    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await RecoverAsync(stoppingToken);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await StartQueuedAsync(stoppingToken);
                await _wake.WaitAsync(stoppingToken);
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
            LogResuming(task.Id);
            hub.Publish(await store.AppendUnfencedAsync(task.Id,
                new StatusChanged(task.Status, OffloadTaskStatus.Queued, "resuming after a daemon restart"), cancellationToken));
        }
    }

    private async Task StartQueuedAsync(CancellationToken cancellationToken)
    {
        var max = Math.Max(1, config().MaxParallel);
        if (_running.Count >= max)
        {
            return;
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
                    await runner.RunAsync(task, _engines[task.Engine], handle.Cancel.Token, _softStop.Token, () => handle.UserCancelled);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogRunCrashed(e, task.Id);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "task {TaskId} was running when the daemon stopped; resuming it")]
    private partial void LogResuming(long taskId);

    [LoggerMessage(Level = LogLevel.Error, Message = "the run of task {TaskId} crashed")]
    private partial void LogRunCrashed(Exception e, long taskId);
}
