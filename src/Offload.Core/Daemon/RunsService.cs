using System.Globalization;
using Offload.Protocol;
using Offload.Store;
using Offload.Workspace;

namespace Offload.Daemon;

/// <summary>Runs over time: tasks side by side (<c>compare</c>), and figures across many of them (<c>stats</c>).</summary>
public sealed class RunsService(ITaskStore store, ReviewService review, GitWorkspace workspace)
{
    /// <summary>The most tasks one comparison shows: columns side by side must stay readable.</summary>
    public const int MaxCompared = 20;

    /// <summary>The dimensions stats can be split by.</summary>
    public static readonly IReadOnlyList<string> ByValues = ["model", "repo", "day", "status", "tag"];

    /// <summary>
    /// The tasks to compare: the ones named; a group; one task alone means its series (it and the tasks that repeat it,
    /// <c>run --again</c>); or the tasks with a tag.
    /// </summary>
    public async Task<CompareResponse> CompareAsync(IReadOnlyList<long> ids, long? group, string? tag, CancellationToken cancellationToken)
    {
        string of;
        List<TaskInfo> tasks;
        if (group is { } g)
        {
            tasks = await ListAsync(new TaskQuery(Limit: MaxCompared) { Group = g }, cancellationToken);
            of = $"group g{g}";
            if (tasks.Count == 0)
            {
                throw new OffloadException(ErrorCodes.NotFound, $"there is no group g{g}", "`offload ls` lists groups as gN");
            }
        }
        else if (tag is not null)
        {
            tasks = await ListAsync(new TaskQuery(IncludeDiscarded: true, Limit: MaxCompared) { Tag = tag }, cancellationToken);
            of = $"tag {tag}";
            if (tasks.Count == 0)
            {
                throw new OffloadException(ErrorCodes.NotFound, $"no task has the tag '{tag}'", "`offload run --tag T` labels a task; `offload ls --json` shows tags");
            }
        }
        else if (ids.Count == 1)
        {
            var one = await store.GetTaskAsync(ids[0], cancellationToken) ?? throw OffloadException.NotFound(ids[0]);
            var root = one.AgainOf ?? one.Id;
            tasks = await ListAsync(new TaskQuery(Limit: MaxCompared) { Series = root }, cancellationToken);
            if (tasks.Count < 2)
            {
                throw new OffloadException(ErrorCodes.BadInput, $"task {ids[0]} has no series to compare: nothing ran it again",
                    $"name two or more tasks (`offload compare {ids[0]} ID`), or `offload run --again {ids[0]}` to start a series");
            }

            of = $"series of task {root}";
        }
        else if (ids.Count is >= 2 and <= MaxCompared)
        {
            tasks = [];
            foreach (var id in ids.Distinct())
            {
                tasks.Add(await store.GetTaskAsync(id, cancellationToken) ?? throw OffloadException.NotFound(id));
            }

            of = "tasks " + string.Join(", ", tasks.Select(t => t.Id));
        }
        else
        {
            throw new OffloadException(ErrorCodes.BadInput,
                ids.Count == 0 ? "nothing to compare" : $"{ids.Count} tasks are too many to compare side by side; the most is {MaxCompared}",
                "`offload compare 3 4`, `offload compare g2` (a group), `offload compare 3` (its series) or `offload compare --tag T`");
        }

        // Each task's details need a git diff: a few at once, the columns in task order.
        using var gate = new SemaphoreSlim(4);
        var entries = await Task.WhenAll(tasks.OrderBy(t => t.Id).Select(async task =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var details = await review.DetailsAsync(task.Id, cancellationToken, markSeen: false);
                return new CompareEntry(details.Task, details.RunSeconds, details.Files, [.. details.Commands.Where(c => c.IsTest)], details.Checks?.LastOrDefault());
            }
            finally
            {
                gate.Release();
            }
        }));
        return new CompareResponse(of, entries);
    }

    /// <summary>How task <paramref name="b"/>'s branch differs from task <paramref name="a"/>'s (<c>compare --diff A B</c>).</summary>
    public async Task<string> DiffBetweenAsync(long a, long b, CancellationToken cancellationToken)
    {
        var from = await store.GetTaskAsync(a, cancellationToken) ?? throw OffloadException.NotFound(a);
        var to = await store.GetTaskAsync(b, cancellationToken) ?? throw OffloadException.NotFound(b);
        if (from.RepoPath != to.RepoPath)
        {
            throw new OffloadException(ErrorCodes.BadInput, $"tasks {a} and {b} are in different repositories ({from.RepoPath}, {to.RepoPath}); their branches cannot be diffed",
                $"`offload diff {a}` and `offload diff {b}` show each against its base");
        }

        foreach (var t in (TaskInfo[])[from, to])
        {
            if (t.Discarded)
            {
                throw new OffloadException(ErrorCodes.Conflict, $"task {t.Id} was discarded; its branch is gone", $"`offload retry {t.Id}` starts it again");
            }
        }

        try
        {
            return await workspace.DiffBetweenAsync(from.RepoPath, from.Branch, to.Branch, cancellationToken);
        }
        catch (WorkspaceException e)
        {
            throw new OffloadException(ErrorCodes.Conflict, e.Message, "a queued task has no branch yet: `offload wait` for it first");
        }
    }

    /// <summary>The figures of the tasks created since <paramref name="since"/> (all when null), split by <paramref name="by"/>.</summary>
    /// <param name="utcOffset">The user's time zone, for <c>--by day</c>.</param>
    public async Task<StatsResponse> StatsAsync(DateTimeOffset? since, string? by, string? tag, string? repo, TimeSpan utcOffset, CancellationToken cancellationToken)
    {
        if (by is not null && !ByValues.Contains(by))
        {
            throw new OffloadException(ErrorCodes.BadInput, $"stats cannot be split by '{by}'", $"use --by {string.Join(", --by ", ByValues)}");
        }

        var tasks = await store.FiguresAsync(new TaskQuery(RepoPath: repo) { Tag = tag, Since = since }, utcOffset, cancellationToken);
        var rows = by switch
        {
            null => [],
            "tag" => tasks.SelectMany(t => (t.Tags.Count == 0 ? ["(none)"] : t.Tags).Select(k => (Key: k, Task: t)))
                .GroupBy(p => p.Key, p => p.Task, StringComparer.Ordinal).Select(g => Row(g.Key, [.. g])).OrderBy(r => r.Key, StringComparer.Ordinal).ToList(),
            "day" => tasks.GroupBy(t => t.Day, StringComparer.Ordinal).Select(g => Row(g.Key, [.. g])).OrderBy(r => r.Key, StringComparer.Ordinal).ToList(),
            _ => tasks.GroupBy(t => by switch { "model" => t.Model, "repo" => t.RepoPath, _ => t.Status.ToWire() }, StringComparer.Ordinal)
                .Select(g => Row(g.Key, [.. g])).OrderByDescending(r => r.Tasks).ThenBy(r => r.Key, StringComparer.Ordinal).ToList(),
        };
        return new StatsResponse(since, by, Row("all", tasks), rows);
    }

    private async Task<List<TaskInfo>> ListAsync(TaskQuery query, CancellationToken cancellationToken) =>
        [.. (await store.ListTasksAsync(query, cancellationToken)).Items];

    private static StatsRow Row(string key, IReadOnlyList<TaskFigures> tasks)
    {
        var ended = tasks.Where(t => t.Status.IsFinal()).ToList();
        var succeeded = ended.Count(t => t.Status == OffloadTaskStatus.Succeeded);
        var checkedTasks = tasks.Count(t => t.CheckPassed is not null);
        var passed = tasks.Count(t => t.CheckPassed == true);
        var seconds = ended.Where(t => t.Seconds is not null).Select(t => t.Seconds!.Value).Order().ToList();
        return new StatsRow(
            key,
            tasks.Count,
            ended.Count,
            succeeded,
            ended.Count(t => t.Status == OffloadTaskStatus.Failed),
            ended.Count(t => t.Status == OffloadTaskStatus.Limited),
            ended.Count(t => t.Status == OffloadTaskStatus.Cancelled),
            ended.Count == 0 ? null : (double)succeeded / ended.Count,
            checkedTasks,
            passed,
            checkedTasks == 0 ? null : (double)passed / checkedTasks,
            Percentile(seconds, 0.5),
            Percentile(seconds, 0.9),
            tasks.Sum(t => (long)t.Turns),
            tasks.Sum(t => t.InputTokens),
            tasks.Sum(t => t.OutputTokens),
            tasks.Sum(t => t.CacheReadTokens),
            tasks.Sum(t => t.CostUsd),
            tasks.Sum(t => (long)t.Retries),
            tasks.Sum(t => (long)t.Approvals),
            tasks.Sum(t => (long)t.Compactions));
    }

    /// <summary>The nearest-rank percentile of sorted values; null when there are none.</summary>
    public static double? Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? null : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
