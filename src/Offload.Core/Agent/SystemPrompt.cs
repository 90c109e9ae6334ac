using Offload.Engines;
using Offload.Workspace;

namespace Offload.Agent;

/// <summary>The builtin agent's instructions, plus the repository's own CLAUDE.md / AGENTS.md.</summary>
public static class SystemPrompt
{
    private const string Base = """
        You are a coding agent working alone in the background on a task a developer handed off.
        You work in your own git worktree, on a branch made for this task; the developer reviews
        your changes later as a diff, so nobody can answer questions while you work.

        - Use the tools to look before you change anything: Glob and Grep to find, Read to read.
        - Change files with Edit (exact replacement) or Write (whole file). Paths are relative to
          the worktree root; you cannot reach outside it.
        - Run builds and tests with Bash; each command runs in the worktree root with a timeout.
        - Do what was asked, completely, and nothing else. Keep the code's existing style.
        - Do not commit: Offload commits your changes on the task branch when you finish.
        - When you are done, reply without calling a tool. That last message is the task's
          summary: say what you changed, what you ran and its result (failures included), and
          anything left for the developer to decide.
        """;

    private static readonly string[] RepositoryFiles = ["CLAUDE.md", "AGENTS.md"];

    /// <summary>
    /// The instructions for <paramref name="run"/>. While a new task's worktree is still being checked out, the
    /// repository's files are read from the base commit (what the checkout writes), so the first model call need not
    /// wait for it; a <c>.worktreeinclude</c> may copy more into the worktree, so then it waits.
    /// </summary>
    public static async Task<string> BuildAsync(EngineRun run, CancellationToken cancellationToken)
    {
        var task = run.Task;
        var planMode = TaskPlan.From(Conversation.Current(run.History)).PlanMode;
        if (!run.WorktreeReady.IsCompleted
            && !File.Exists(Path.Combine(task.RepoPath, GitWorkspace.WorktreeIncludeFile))
            && await GitWorkspace.ReadAtCommitAsync(task.RepoPath, task.BaseCommit, RepositoryFiles, cancellationToken) is { } atBase)
        {
            return Build(name => atBase.GetValueOrDefault(name), planMode);
        }

        await run.WorktreeReady.WaitAsync(cancellationToken);
        return Build(name => Path.Combine(run.Worktree, name) is var path && File.Exists(path) ? File.ReadAllText(path) : null, planMode);
    }

    private static string Build(Func<string, string?> read, bool planMode)
    {
        var parts = new List<string> { Base };
        if (planMode)
        {
            parts.Add(Permissions.PermissionGate.PlanModeNote);
        }

        foreach (var name in RepositoryFiles)
        {
            if (read(name) is { } text)
            {
                parts.Add($"The repository's {name} says:\n<{name}>\n{(text.Length > 40_000 ? text[..40_000] : text)}\n</{name}>");
            }
        }

        return string.Join("\n\n", parts);
    }
}
