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
    bool PlanFirst = false);

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
