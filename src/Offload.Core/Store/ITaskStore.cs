using Offload.Protocol;

namespace Offload.Store;

/// <summary>
/// Tasks and their journals. SQLite today; the same contract later has a PostgreSQL
/// implementation for fleets. The tasks row is a projection of the journal, kept in step
/// in the same transaction as each appended event.
/// </summary>
public interface ITaskStore : IDisposable
{
    /// <summary>Inserts the task (status queued) and its <c>task.created</c> event in one transaction.</summary>
    Task<TaskInfo> CreateTaskAsync(NewTask task, CancellationToken cancellationToken = default);

    /// <summary>Inserts the tasks of a new best-of-N group, all or none, numbering the group.</summary>
    Task<IReadOnlyList<TaskInfo>> CreateGroupAsync(IReadOnlyList<NewTask> tasks, CancellationToken cancellationToken = default);

    Task<TaskInfo?> GetTaskAsync(long id, CancellationToken cancellationToken = default);

    Task<Page<TaskInfo>> ListTasksAsync(TaskQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// The figures of the tasks the query selects (discarded ones included; its limit and paging are not used), one row
    /// per key of <paramref name="by"/> (model, repo, status, day, tag; null: one row, "all"), in no order. A task with
    /// several tags counts under each; one with none under "(none)".
    /// </summary>
    /// <param name="utcOffset">The user's time zone, for the days of <c>by day</c>.</param>
    Task<IReadOnlyList<StatsSums>> StatsAsync(TaskQuery query, string? by, TimeSpan utcOffset, CancellationToken cancellationToken = default);

    /// <summary>Tasks in the given statuses, oldest first.</summary>
    Task<IReadOnlyList<TaskInfo>> TasksInStatusAsync(IReadOnlyCollection<OffloadTaskStatus> statuses, CancellationToken cancellationToken = default);

    /// <summary>Takes the task for a new run attempt and returns its number (the fencing token).</summary>
    Task<int> BeginAttemptAsync(long taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the task for a new run attempt and appends the attempt's first event, in one transaction. The stored
    /// event's <see cref="AgentEvent.Attempt"/> is the attempt's number (the fencing token).
    /// </summary>
    Task<AgentEvent> BeginAttemptAsync(long taskId, AgentEvent first, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends an event as <paramref name="attempt"/>; refused with <see cref="StaleAttemptException"/>
    /// when that attempt is no longer current. Returns the event with its envelope filled in.
    /// </summary>
    Task<AgentEvent> AppendAsync(long taskId, int attempt, AgentEvent body, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends several events, fenced like <see cref="AppendAsync"/>, in one transaction: all of them or none.
    /// For steps that must not be split by a crash, e.g. a model answer and the tool calls it makes.
    /// </summary>
    Task<IReadOnlyList<AgentEvent>> AppendAllAsync(long taskId, int attempt, IReadOnlyList<AgentEvent> bodies, CancellationToken cancellationToken = default);

    /// <summary>Appends without fencing: for actions of the user or the daemon itself (cancel, reply, recovery).</summary>
    Task<AgentEvent> AppendUnfencedAsync(long taskId, AgentEvent body, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AgentEvent>> ReadEventsAsync(long taskId, long afterSeq = 0, int limit = int.MaxValue, CancellationToken cancellationToken = default);

    Task SetSessionIdAsync(long taskId, string sessionId, CancellationToken cancellationToken = default);

    Task<string?> GetSessionIdAsync(long taskId, CancellationToken cancellationToken = default);

    Task MarkSeenAsync(long taskId, CancellationToken cancellationToken = default);

    Task SetDiscardedAsync(long taskId, CancellationToken cancellationToken = default);
}

public sealed record NewTask(
    string Title,
    string Prompt,
    string Model,
    string Engine,
    string RepoPath,
    string BaseRef,
    string BaseCommit,
    Func<long, (string Branch, string Worktree)> Place,
    int? MaxTurns = null,
    decimal? MaxCostUsd = null,
    int? TimeoutSeconds = null,
    bool PlanFirst = false)
{
    public string? Check { get; init; }
    public int? CheckTries { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public long? AgainOf { get; init; }
}

/// <param name="Tag">Only tasks with this tag.</param>
/// <param name="Grep">Only tasks whose prompt or title contains this text (case-insensitive for ASCII).</param>
/// <param name="Group">Only the tasks of this best-of-N group.</param>
/// <param name="Series">Only this task and the tasks that repeat it (<c>run --again</c>).</param>
public sealed record TaskQuery(bool IncludeDiscarded = false, long? After = null, int Limit = 100, string? RepoPath = null)
{
    public string? Tag { get; init; }
    public string? Grep { get; init; }
    public long? Group { get; init; }
    public long? Series { get; init; }
    /// <summary>Only tasks created at or after this time.</summary>
    public DateTimeOffset? Since { get; init; }
}

/// <summary>
/// The sums of a set of tasks for <c>stats</c>, one key's: counts by status and check, the usage, and the wall time
/// (start to end, milliseconds, in no order) of each task that ended.
/// </summary>
public sealed record StatsSums(
    string Key, int Tasks, int Ended, int Succeeded, int Failed, int Limited, int Cancelled, int Checked, int CheckPassed,
    long Turns, long InputTokens, long OutputTokens, long CacheReadTokens, decimal CostUsd, long Retries, long Approvals, long Compactions,
    IReadOnlyList<long> WallMs);
