using Offload.Agent;
using System.Text;
using Offload.Config;
using Offload.Models;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>What the API can ask of tasks: create, cancel, and the views. Checks input, writes the store, wakes the scheduler.</summary>
public sealed class TaskService(
    ITaskStore store,
    EventHub hub,
    GitWorkspace workspace,
    Scheduler scheduler,
    ModelGateway models,
    OffloadPaths paths,
    Func<OffloadConfig> config)
{
    public const int MaxPromptBytes = 1024 * 1024;

    public async Task<TaskInfo> CreateAsync(CreateTaskRequest request, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            throw new OffloadException(ErrorCodes.BadInput, "the prompt is empty", "say what the agent should do: `offload run \"fix the failing test\"`");
        }

        if (Encoding.UTF8.GetByteCount(request.Prompt) > MaxPromptBytes)
        {
            throw new OffloadException(ErrorCodes.BadInput,
                $"the prompt is {Encoding.UTF8.GetByteCount(request.Prompt):N0} bytes; the limit is 1 MiB",
                "put large material in a file in the repository and point the prompt at it");
        }

        RefuseNul(request.Prompt, "the prompt");
        if (request.Name is not null)
        {
            RefuseNul(request.Name, "the name");
        }

        RefuseLimitsNotAboveZero(request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds);
        var title = Title(request.Name ?? request.Prompt);
        var slug = GitWorkspace.Slug(title);
        var (repo, commonDir) = await ResolveAsync(request.RepoPath, request.BaseRef, cancellationToken);
        var settings = config().WithRepository(repo.Root);
        var engine = request.Engine ?? settings.DefaultEngine;
        if (!scheduler.HasEngine(engine))
        {
            throw new OffloadException(ErrorCodes.BadInput, $"unknown engine '{engine}'", $"use --engine {string.Join(" or --engine ", scheduler.EngineNames)}");
        }

        if (request.PlanFirst && engine != "builtin")
        {
            throw new OffloadException(ErrorCodes.BadInput, $"--plan-first works with the builtin engine, not '{engine}'",
                "drop --engine, or run Claude Code's own plan mode by hand");
        }

        var model = models.Resolve(request.Model, engine, request.RepoPath);
        var task = await store.CreateTaskAsync(new NewTask(
            title, request.Prompt, model, engine, repo.Root, repo.BaseRef, repo.BaseCommit,
            id => Place(repo.Root, commonDir, paths.WorktreesDir, id, slug),
            request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds, request.PlanFirst), cancellationToken);
        foreach (var e in await store.ReadEventsAsync(task.Id, 0, int.MaxValue, cancellationToken))
        {
            hub.Publish(e);
        }

        scheduler.Wake();
        return task;
    }

    /// <summary>
    /// Text with a NUL byte is refused: it is not text a person typed (a binary file read by mistake), and git, argv (the
    /// claude engine's prompt) and C strings would cut it off there without a word.
    /// </summary>
    public static void RefuseNul(string text, string what)
    {
        if (text.IndexOf('\0', StringComparison.Ordinal) is var at and >= 0)
        {
            throw new OffloadException(ErrorCodes.BadInput,
                $"{what} contains a NUL byte (at character {at + 1:N0}), so it is not text; was a binary file read by mistake?",
                "give plain text; to show the agent a binary file, put it in the repository and name its path");
        }
    }

    /// <summary>A budget of 0 or below would stop the task before its first turn ("limited") instead of saying so now.</summary>
    public static void RefuseLimitsNotAboveZero(int? maxTurns, decimal? maxCostUsd, int? timeoutSeconds)
    {
        var bad = maxTurns is <= 0 ? $"--max-turns {maxTurns}"
            : maxCostUsd is <= 0 ? $"--max-cost {maxCostUsd}"
            : timeoutSeconds is <= 0 ? $"--timeout {timeoutSeconds}s"
            : null;
        if (bad is not null)
        {
            throw new OffloadException(ErrorCodes.BadInput, $"{bad} is not a limit: limits must be above 0; nothing was started",
                "e.g. --max-turns 50, --max-cost 2.50, --timeout 30m; leave the option out for the configured default");
        }
    }

    private async Task<NewTaskRepo> ResolveAsync(string path, string? baseRef, CancellationToken cancellationToken)
    {
        try
        {
            return await workspace.ResolveForNewTaskAsync(path, baseRef, cancellationToken);
        }
        catch (WorkspaceException e)
        {
            throw new OffloadException(ErrorCodes.Repository, e.Message);
        }
    }

    public async Task<TaskInfo> GetAsync(long id, CancellationToken cancellationToken = default) =>
        await store.GetTaskAsync(id, cancellationToken) ?? throw OffloadException.NotFound(id);

    public async Task<TaskInfo> CancelAsync(long id, CancellationToken cancellationToken = default)
    {
        var task = await GetAsync(id, cancellationToken);
        if (task.Status.IsFinal())
        {
            throw new OffloadException(ErrorCodes.Conflict, $"task {id} already ended ({task.Status.ToWire()}); there is nothing to cancel",
                $"`offload show {id}` shows how it ended");
        }

        await scheduler.CancelAsync(task, cancellationToken);
        return await GetAsync(id, cancellationToken);
    }

    public async Task<string> DiffAsync(long id, CancellationToken cancellationToken = default)
    {
        var task = await GetAsync(id, cancellationToken);
        if (task.Discarded)
        {
            throw new OffloadException(ErrorCodes.Conflict, $"task {id} was discarded; its branch is gone", "`offload retry` starts it again");
        }

        return await workspace.DiffAsync(task.RepoPath, task.BaseCommit, task.Branch, cancellationToken);
    }

    public async Task<TaskReport> ReportAsync(long id, CancellationToken cancellationToken = default)
    {
        var task = await GetAsync(id, cancellationToken);
        IReadOnlyList<ChangedFile> files = [];
        if (!task.Discarded)
        {
            try
            {
                files = await workspace.ChangedFilesAsync(task.RepoPath, task.BaseCommit, task.Branch, cancellationToken);
            }
            catch (WorkspaceException)
            {
                // the branch does not exist yet (queued) or any more
            }
        }

        if (task.Status.IsFinal() && !task.Seen)
        {
            await store.MarkSeenAsync(id, cancellationToken);
        }

        return new TaskReport(task, files);
    }

    /// <summary>
    /// The new task's branch and worktree folder, refused when either is taken: called by the store inside the
    /// transaction that creates the task, so a refusal stores nothing. The branch is looked up in the repository's
    /// files when it can be (<paramref name="commonDir"/>), so that no git process runs while the store is locked.
    /// </summary>
    private static (string Branch, string Worktree) Place(string repoRoot, string? commonDir, string worktreesDir, long id, string slug)
    {
        var branch = GitWorkspace.BranchName(id, slug);
        var worktree = Path.Combine(worktreesDir, $"{id}-{slug}");
        if (Directory.Exists(worktree) || File.Exists(worktree))
        {
            throw new WorkspaceException(WorkspaceErrors.WorktreeExists,
                $"worktree folder {worktree} already exists, so the new task cannot use it; nothing was started. " +
                $"Remove it if it is left over (`git worktree remove --force {worktree}` or delete the folder), or give the task another --name.");
        }

        if ((commonDir is null ? null : GitWorkspace.LocalBranchExists(commonDir, branch))
            ?? Git.RunAsync(repoRoot, ["show-ref", "--verify", "--quiet", "refs/heads/" + branch]).GetAwaiter().GetResult().Ok)
        {
            throw new WorkspaceException(WorkspaceErrors.BranchExists,
                $"branch {branch} already exists in {repoRoot}, so the new task cannot use it; nothing was started. " +
                $"Delete it if it is left over (`git branch -D {branch}`), or give the task another --name.");
        }

        return (branch, worktree);
    }

    internal static string Title(string text)
    {
        var line = text.Trim().Split('\n', 2)[0].Trim();
        return line.Length <= 72 ? line : line[..71].TrimEnd() + "…";
    }
}
