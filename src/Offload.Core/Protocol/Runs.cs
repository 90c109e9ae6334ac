namespace Offload.Protocol;

/// <summary>
/// One task as <c>offload compare</c> shows it: the task, how long it ran, what it changed, the commands that ran tests
/// (with their exit codes) and its last check.
/// </summary>
public sealed record CompareEntry(TaskInfo Task, double RunSeconds, IReadOnlyList<ChangedFile> Files, IReadOnlyList<CommandRun> Tests, CheckRan? Check);

/// <summary>What was compared (<paramref name="Of"/>: "tasks 3, 4", "group g2", "series of task 3", "tag auth") and the tasks, oldest first.</summary>
public sealed record CompareResponse(string Of, IReadOnlyList<CompareEntry> Tasks);

/// <summary>
/// The figures of a set of tasks (<c>offload stats</c>): rates are of the tasks that ended; times are each task's wall
/// time from its start to its end (tasks that ended); sums are over all of them.
/// </summary>
public sealed record StatsRow(
    string Key,
    int Tasks,
    int Ended,
    int Succeeded,
    int Failed,
    int Limited,
    int Cancelled,
    double? SuccessRate,
    int Checked,
    int CheckPassed,
    double? CheckPassRate,
    double? MedianSeconds,
    double? P90Seconds,
    long Turns,
    long InputTokens,
    long OutputTokens,
    long CacheReadTokens,
    decimal CostUsd,
    long Retries,
    long Approvals,
    long Compactions);

/// <param name="By">model, repo, day, status or tag; null: one row for all.</param>
public sealed record StatsResponse(DateTimeOffset? Since, string? By, StatsRow Total, IReadOnlyList<StatsRow> Rows);
