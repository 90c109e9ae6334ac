namespace Offload.Workspace;

/// <summary>
/// The repository a task was submitted from. <see cref="BaseRef"/> is the name as the user gave it
/// (or the current branch, or the commit when HEAD is detached); <see cref="BaseCommit"/> is what it
/// resolved to when the task was created, so later moves of the branch do not change the task's base.
/// </summary>
public sealed record RepoInfo(string Root, string BaseRef, string BaseCommit, string? CurrentBranch);

/// <summary>
/// The repository for a new task, and its git common directory (where its branches are stored), or null when
/// the repository was resolved the long way and each branch must be asked of git.
/// </summary>
public sealed record NewTaskRepo(RepoInfo Repo, string? CommonDir);

/// <summary>A task's worktree, its branch, and the ignored files copied into it from <c>.worktreeinclude</c>.</summary>
public sealed record WorktreeInfo(string Path, string Branch, string BaseCommit, IReadOnlyList<string> CopiedFiles);

/// <summary>A saved state of a task's worktree after a turn, kept on <c>refs/offload/&lt;id&gt;/turn-&lt;n&gt;</c>.</summary>
public sealed record Checkpoint(int Turn, string Sha, DateTimeOffset CreatedAt, int FilesChanged);
