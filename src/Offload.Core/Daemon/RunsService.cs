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

        // One query: each task is under one key, so the total is the rows' sum; tags are the exception (a task counts
        // under each of its tags), and their total is asked for on its own.
        var query = new TaskQuery(RepoPath: repo) { Tag = tag, Since = since };
        var sums = await store.StatsAsync(query, by, utcOffset, cancellationToken);
        var total = by is null ? sums.SingleOrDefault()
            : by == "tag" ? (await store.StatsAsync(query, null, utcOffset, cancellationToken)).SingleOrDefault()
            : Sum("all", sums);
        var rows = by is null ? [] : sums.Select(Row);
        var ordered = by is "day" or "tag"
            ? rows.OrderBy(r => r.Key, StringComparer.Ordinal)
            : rows.OrderByDescending(r => r.Tasks).ThenBy(r => r.Key, StringComparer.Ordinal);
        return new StatsResponse(since, by, Row(total ?? Sum("all", [])), [.. ordered]);
    }

    private async Task<List<TaskInfo>> ListAsync(TaskQuery query, CancellationToken cancellationToken) =>
        [.. (await store.ListTasksAsync(query, cancellationToken)).Items];

    private static StatsSums Sum(string key, IReadOnlyList<StatsSums> parts) => new(
        key, parts.Sum(p => p.Tasks), parts.Sum(p => p.Ended), parts.Sum(p => p.Succeeded), parts.Sum(p => p.Failed),
        parts.Sum(p => p.Limited), parts.Sum(p => p.Cancelled), parts.Sum(p => p.Checked), parts.Sum(p => p.CheckPassed),
        parts.Sum(p => p.Turns), parts.Sum(p => p.InputTokens), parts.Sum(p => p.OutputTokens), parts.Sum(p => p.CacheReadTokens),
        parts.Sum(p => p.CostUsd), parts.Sum(p => p.Retries), parts.Sum(p => p.Approvals), parts.Sum(p => p.Compactions),
        [.. parts.SelectMany(p => p.WallMs)]);

    /// <summary>Rates of the tasks that ended (and of the checked ones), nearest-rank percentiles of their wall times.</summary>
    private static StatsRow Row(StatsSums s)
    {
        var seconds = s.WallMs.Order().Select(ms => ms / 1000.0).ToList();
        return new StatsRow(
            s.Key, s.Tasks, s.Ended, s.Succeeded, s.Failed, s.Limited, s.Cancelled,
            s.Ended == 0 ? null : (double)s.Succeeded / s.Ended,
            s.Checked, s.CheckPassed, s.Checked == 0 ? null : (double)s.CheckPassed / s.Checked,
            Percentile(seconds, 0.5), Percentile(seconds, 0.9),
            s.Turns, s.InputTokens, s.OutputTokens, s.CacheReadTokens, s.CostUsd, s.Retries, s.Approvals, s.Compactions);
    }

    /// <summary>The nearest-rank percentile of sorted values; null when there are none.</summary>
    private static double? Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? null : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
