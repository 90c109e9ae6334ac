namespace Offload.Cli;

/// <summary>Stable exit codes; the README and <c>offload help exit-codes</c> list them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Error = 1;
    public const int BadInput = 2;
    public const int NotFound = 3;
    public const int Conflict = 4;
    public const int Daemon = 5;
    public const int Repository = 6;
    public const int NoModel = 7;
    public const int TaskFailed = 8;
    public const int TaskLimited = 9;
    public const int TaskCancelled = 10;
    public const int MergeRefused = 11;
    public const int NeedsInput = 12;
    public const int WaitTimedOut = 13;
    public const int Interrupted = 130;

    public const string Table = """
        0    ok (for wait: every task succeeded)
        1    unexpected error
        2    bad input: a usage error (unknown command or option, a malformed value; the command's usage follows), an empty or oversized prompt or one that is not text (NUL bytes, not UTF-8), a limit of 0 or below, a config file that does not parse (file, line and column are named)
        3    no such task or group
        4    the task's state does not allow it (e.g. cancelling a task that already ended, diffing a discarded one, merging a group that has no pick yet), or a new task's branch or worktree folder already exists
        5    the daemon cannot be started (its reason is shown: e.g. a folder it cannot create, a database file that is not Offload's) or reached, another version answers, or its disk is full ("disk full at PATH")
        6    repository problem: not a git repository, no commits, a base that does not resolve
        7    model problem: malformed --model, unknown provider, missing API key, a sim: scenario that does not exist or does not parse
        8    wait: a task failed (its check too), or a group ended with no pick
        9    wait: a task was stopped by a limit (turns, cost, time, repetition)
        10   wait: a task was cancelled
        11   merge/apply refused: your uncommitted changes touch the task's files, the task's worktree has changes not on its branch, the merge conflicts, or HEAD is detached; nothing was changed
        12   wait: a task needs input (an approval, or its plan); `show` says what, then approve, deny or reply (`wait --until done` waits through it)
        13   wait: --timeout passed first; the tasks go on
        130  interrupted (Ctrl-C)
        """;

    public static int FromApiCode(string code) => code switch
    {
        "bad_input" => BadInput,
        "not_found" => NotFound,
        "conflict" or "branch_exists" or "worktree_exists" => Conflict,
        "dirty_tree" or "merge_conflict" or "detached_head" or "uncommitted_work" => MergeRefused,
        "daemon" or "disk_full" => Daemon,
        "repository" or "not_a_repo" or "no_commits" or "bad_base" => Repository,
        "no_model" => NoModel,
        _ => Error,
    };
}

/// <summary>An error to print (what, why, what next) and exit with.</summary>
public sealed class CliException(int exitCode, string message, string? hint = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
    public string? Hint { get; } = hint;
}
