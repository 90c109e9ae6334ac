namespace Offload.Workspace;

/// <summary>
/// A git operation Offload refused or could not do. <see cref="Code"/> is a short stable string
/// the API and CLI pass on (for example <c>dirty_tree</c>); the message says what happened, why,
/// and what to type next. <see cref="Files"/> lists the paths involved, when there are any.
/// </summary>
public sealed class WorkspaceException : Exception
{
    public WorkspaceException(string code, string message, IReadOnlyList<string>? files = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
        Files = files ?? [];
    }

    public string Code { get; }

    public IReadOnlyList<string> Files { get; }
}

/// <summary>The codes a <see cref="WorkspaceException"/> carries.</summary>
public static class WorkspaceErrors
{
    public const string NotARepo = "not_a_repo";
    public const string NoCommits = "no_commits";
    public const string BadBase = "bad_base";
    public const string BranchExists = "branch_exists";
    public const string BranchMissing = "branch_missing";
    public const string WorktreeExists = "worktree_exists";
    public const string BranchCheckedOut = "branch_checked_out";
    public const string Conflict = "conflict";
    public const string DirtyTree = "dirty_tree";
    public const string DetachedHead = "detached_head";
    public const string BadCheckpoint = "bad_checkpoint";
    public const string GitFailed = "git_failed";
    public const string Tampered = "worktree_tampered";
}
