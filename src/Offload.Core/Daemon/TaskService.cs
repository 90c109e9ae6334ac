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
        if (request.Models is { Count: > 1 } || request.Attempts is > 1)
        {
            throw new OffloadException(ErrorCodes.BadInput, "several models or attempts make a group: POST /v1/groups",
                "`offload run --models a,b -n 2 \"…\"` makes one");
        }

        return (await CreateTasksAsync(request, group: false, cancellationToken))[0];
    }

    /// <summary>A best-of-N group: one task per model and attempt, from one prompt and one base commit.</summary>
    public async Task<GroupInfo> CreateGroupAsync(CreateTaskRequest request, CancellationToken cancellationToken = default)
    {
        var tasks = await CreateTasksAsync(request, group: true, cancellationToken);
        return await GroupAsync(tasks[0].Group!.Value, cancellationToken);
    }

    /// <summary>The most tasks one group may have: each is a whole agent run.</summary>
    public const int MaxGroupSize = 20;

    private async Task<IReadOnlyList<TaskInfo>> CreateTasksAsync(CreateTaskRequest request, bool group, CancellationToken cancellationToken)
    {
        long? againOf = null;
        if (request.AgainOf is { } originalId)
        {
            var original = await store.GetTaskAsync(originalId, cancellationToken)
                ?? throw new OffloadException(ErrorCodes.NotFound, $"there is no task {originalId} to run again", "`offload ls --all` lists the tasks");
            againOf = original.AgainOf ?? original.Id; // a series hangs off its first task
            request = request with
            {
                Prompt = string.IsNullOrEmpty(request.Prompt) ? original.Prompt : request.Prompt,
                Name = request.Name ?? (string.IsNullOrEmpty(request.Prompt) ? original.Title : null),
                Model = request.Model ?? (request.Models is null ? original.Model : null),
                Engine = request.Engine ?? original.Engine,
                MaxTurns = request.MaxTurns ?? original.MaxTurns,
                MaxCostUsd = request.MaxCostUsd ?? original.MaxCostUsd,
                TimeoutSeconds = request.TimeoutSeconds ?? original.TimeoutSeconds,
                Check = request.Check ?? original.Check,
                CheckTries = request.CheckTries ?? original.CheckTries,
                Tags = request.Tags ?? original.Tags,
            };
        }

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
        var tags = Tags(request.Tags);
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

        var (check, checkTries) = Check(request, settings);
        var attempts = request.Attempts ?? 1;
        IReadOnlyList<string?> wanted = request.Models is { Count: > 0 } list ? [.. list] : [request.Model];
        if (attempts < 1 || wanted.Count * attempts > MaxGroupSize)
        {
            throw new OffloadException(ErrorCodes.BadInput,
                attempts < 1 ? $"-n {attempts} is not a number of attempts; nothing was started" : $"{wanted.Count} models × {attempts} attempts make {wanted.Count * attempts} tasks; a group has at most {MaxGroupSize}; nothing was started",
                "e.g. --models anthropic:claude-opus-4-8,openai:gpt-5 -n 2");
        }

        var resolved = wanted.Select(m => models.Resolve(m, engine, request.RepoPath)).ToList(); // every model is checked before anything is stored
        var news = resolved.SelectMany(model => Enumerable.Repeat(model, attempts)).Select(model => new NewTask(
            title, request.Prompt, model, engine, repo.Root, repo.BaseRef, repo.BaseCommit,
            id => Place(repo.Root, commonDir, paths.WorktreesDir, id, slug),
            request.MaxTurns, request.MaxCostUsd, request.TimeoutSeconds, request.PlanFirst)
        {
            Check = check,
            CheckTries = check is null ? null : checkTries,
            Tags = tags,
            AgainOf = againOf,
        }).ToList();
        var tasks = group
            ? await store.CreateGroupAsync(news, cancellationToken)
            : [await store.CreateTaskAsync(news.Single(), cancellationToken)];
        foreach (var task in tasks)
        {
            foreach (var e in await store.ReadEventsAsync(task.Id, 0, int.MaxValue, cancellationToken))
            {
                hub.Publish(e);
            }
        }

        scheduler.Wake();
        return tasks;
    }

    /// <summary>The check the task runs (the request's, else the repository's config) and how many times it may run.</summary>
    private static (string? Command, int Tries) Check(CreateTaskRequest request, OffloadConfig settings)
    {
        if (request.Check is { } given && string.IsNullOrWhiteSpace(given))
        {
            throw new OffloadException(ErrorCodes.BadInput, "--check is empty; nothing was started", "give the command that must pass: --check \"npm test\"");
        }

        if (request.CheckTries is <= 0)
        {
            throw new OffloadException(ErrorCodes.BadInput, $"--check-tries {request.CheckTries} is not a number of tries; nothing was started",
                $"give 1 or more (the default is {OffloadConfig.DefaultCheckTries})");
        }

        var command = request.Check ?? (string.IsNullOrWhiteSpace(settings.Check) ? null : settings.Check);
        if (command is not null)
        {
            RefuseNul(command, "the check");
        }

        return (command, request.CheckTries ?? settings.CheckTries ?? OffloadConfig.DefaultCheckTries);
    }

    /// <summary>Tags are short words: letters, digits and <c>. _ - / :</c>, so that they read the same in every view.</summary>
    private static IReadOnlyList<string> Tags(IReadOnlyList<string>? tags)
    {
        var list = (tags ?? []).Select(t => t.Trim()).Where(t => t.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        if (list.FirstOrDefault(t => t.Length > 64 || !t.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '/' or ':')) is { } bad)
        {
            throw new OffloadException(ErrorCodes.BadInput, $"the tag '{bad}' is not a tag; nothing was started",
                "a tag is up to 64 letters, digits and . _ - / : (e.g. --tag auth-refactor)");
        }

        return list;
    }

    /// <summary>
    /// A group with its pick, once every task of it is final: among the tasks that succeeded (a task with a check
    /// succeeds only when it passed), the cheapest, then the one with the smallest diff (lines added + deleted), then the
    /// first. docs/runs.md documents the rule.
    /// </summary>
    public async Task<GroupInfo> GroupAsync(long id, CancellationToken cancellationToken = default)
    {
        var tasks = (await store.ListTasksAsync(new TaskQuery(Limit: MaxGroupSize * 2) { Group = id }, cancellationToken)).Items.OrderBy(t => t.Id).ToList();
        if (tasks.Count == 0)
        {
            throw new OffloadException(ErrorCodes.NotFound, $"there is no group g{id}", "`offload ls` lists groups as gN");
        }

        if (!tasks.All(t => t.Status.IsFinal()))
        {
            return new GroupInfo(id, tasks);
        }

        var candidates = tasks.Where(t => t.Status == OffloadTaskStatus.Succeeded && t.CheckPassed != false && !t.Discarded).ToList();
        if (candidates.Count == 0)
        {
            return new GroupInfo(id, tasks, null, "no task of the group succeeded" + (tasks.Any(t => t.Check is not null) ? " with its check passing" : ""));
        }

        var sized = new List<(TaskInfo Task, int Lines)>();
        foreach (var t in candidates)
        {
            IReadOnlyList<ChangedFile> files = [];
            try
            {
                files = await workspace.ChangedFilesAsync(t.RepoPath, t.BaseCommit, t.Branch, cancellationToken);
            }
            catch (WorkspaceException)
            {
            }

            sized.Add((t, files.Sum(f => f.Added + f.Deleted)));
        }

        var pick = sized.OrderBy(s => s.Task.Usage.CostUsd).ThenBy(s => s.Lines).ThenBy(s => s.Task.Id).First();
        var why = (candidates.Any(t => t.CheckPassed == true) ? "its check passed; " : "it succeeded; ")
            + (candidates.Count == 1 ? "the only one" : FormattableString.Invariant($"of {candidates.Count}, the cheapest (${pick.Task.Usage.CostUsd:0.####})")
                + (sized.Count(s => s.Task.Usage.CostUsd == pick.Task.Usage.CostUsd) > 1 ? $", then the smallest diff ({pick.Lines} lines)" : ""));
        return new GroupInfo(id, tasks, pick.Task.Id, why);
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

    public async Task<TaskReport> ReportAsync(long id, CancellationToken cancellationToken = default, bool markSeen = true)
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

        if (markSeen && task.Status.IsFinal() && !task.Seen)
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
