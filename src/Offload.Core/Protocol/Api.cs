namespace Offload.Protocol;

public sealed record CreateTaskRequest(
    string Prompt,
    string RepoPath,
    string? Model = null,
    string? Engine = null,
    string? BaseRef = null,
    string? Name = null,
    int? MaxTurns = null,
    decimal? MaxCostUsd = null,
    int? TimeoutSeconds = null,
    bool PlanFirst = false)
{
    /// <summary>The command that defines done (<c>run --check</c>); null: the repository's <c>check</c>, if any.</summary>
    public string? Check { get; init; }

    /// <summary>How many times the check may fail and be sent back to the agent (default 3).</summary>
    public int? CheckTries { get; init; }

    /// <summary>Best-of-N (<c>POST /v1/groups</c>): each of these models gets <see cref="Attempts"/> tasks; null: just <see cref="Model"/>.</summary>
    public IReadOnlyList<string>? Models { get; init; }

    /// <summary>Best-of-N: tasks per model (<c>run -n K</c>).</summary>
    public int? Attempts { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary><c>run --again ID</c>: the task whose prompt, model, engine, check, limits and tags this one repeats, unless given here.</summary>
    public long? AgainOf { get; init; }
}

public sealed record Usage(long InputTokens, long OutputTokens, decimal CostUsd)
{
    public static readonly Usage Zero = new(0, 0, 0m);
}

/// <summary>A task as every view shows it.</summary>
public sealed record TaskInfo
{
    public required long Id { get; init; }
    public required string Title { get; init; }
    public required string Prompt { get; init; }
    public required OffloadTaskStatus Status { get; init; }
    public required string Model { get; init; }
    public required string Engine { get; init; }
    public required string RepoPath { get; init; }
    public required string BaseRef { get; init; }
    public required string BaseCommit { get; init; }
    public required string Branch { get; init; }
    public required string Worktree { get; init; }
    public string? Summary { get; init; }
    public string? Error { get; init; }
    public int Turns { get; init; }
    public required Usage Usage { get; init; }
    public int Attempt { get; init; }
    public int? MaxTurns { get; init; }
    public decimal? MaxCostUsd { get; init; }
    public int? TimeoutSeconds { get; init; }
    public bool Seen { get; init; }
    public bool Discarded { get; init; }
    /// <summary>The agent's plan so far (<see cref="PlanItemChanged"/>); null while it has none.</summary>
    public PlanProgress? Plan { get; init; }
    /// <summary>The command that defines done; null: none (<see cref="CheckRan"/>).</summary>
    public string? Check { get; init; }
    public int? CheckTries { get; init; }
    /// <summary>The last check's result; null while none ran.</summary>
    public bool? CheckPassed { get; init; }
    /// <summary>The best-of-N group the task belongs to; null: none.</summary>
    public long? Group { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>The first task of the series this one repeats (<c>run --again</c>); null: it is an original.</summary>
    public long? AgainOf { get; init; }
    /// <summary>Model calls retried (<see cref="ModelRetried"/>), over every attempt.</summary>
    public int Retries { get; init; }
    /// <summary>Approvals asked of the user (<see cref="PermissionRequested"/>).</summary>
    public int Approvals { get; init; }
    /// <summary>Times the conversation was compacted (<see cref="ContextCompacted"/>).</summary>
    public int ContextCompactions { get; init; }
    /// <summary>Of <see cref="Usage"/>'s input tokens, those read from the prompt cache.</summary>
    public long CacheReadTokens { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
}

public sealed record Page<T>(IReadOnlyList<T> Items, string? Next);

/// <param name="Sandbox">Whether the builtin agent's shell commands run under bubblewrap (false: bwrap is missing or does not work).</param>
public sealed record DaemonStatusResponse(int Pid, string Version, string Socket, string DataDir, DateTimeOffset StartedAt, int Running, int Queued, int MaxParallel, bool Sandbox = false);

/// <summary>An error as the API returns it: what happened, and what to type next.</summary>
public sealed record ApiError(string Code, string Message, string? Hint = null);

public sealed record ChangedFile(string Path, int Added, int Deleted, string Change);

public sealed record TaskReport(TaskInfo Task, IReadOnlyList<ChangedFile> Files);

/// <summary>
/// A best-of-N group: tasks from one prompt and one base, one per model and attempt. Once all are final, the pick is
/// the task <see cref="GroupPick"/> chooses; null before that, or when none succeeded.
/// </summary>
public sealed record GroupInfo(long Id, IReadOnlyList<TaskInfo> Tasks, long? Pick = null, string? PickReason = null)
{
    public bool Done => Tasks.All(t => t.Status.IsFinal());
}
