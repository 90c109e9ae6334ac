using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Offload.Bench;

/// <summary>Issue 16's figure: <c>offload stats</c> and <c>offload compare</c> with 10,000 tasks stored.</summary>
public sealed partial class Bench
{
    /// <summary>
    /// 10,000 finished tasks spread over 30 days, three models, two statuses, a tag on a fifth, a check on half (the
    /// stored rows carry what stats reads), plus two real tasks to compare; each command timed from process start to
    /// exit, median of 30 (quick: 10) after one warm-up.
    /// </summary>
    private async Task<Figure> StatsCompareAsync()
    {
        const int Stored = 10_000;
        await using var sim = await SimulatorAsync(Scenarios.Final());
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await FillStoreAsync(box, Stored);
        using (var db = new SqliteConnection($"Data Source={box.Database}"))
        {
            db.Open();
            using var vary = db.CreateCommand();
            vary.CommandText = """
                UPDATE tasks SET
                    model = CASE id % 3 WHEN 0 THEN 'bench:a' WHEN 1 THEN 'bench:b' ELSE 'bench:final' END,
                    status = CASE WHEN id % 7 = 0 THEN 'failed' ELSE 'succeeded' END,
                    tags = CASE WHEN id % 5 = 0 THEN ',parser,' END,
                    check_command = CASE WHEN id % 2 = 0 THEN 'make test' END,
                    check_passed = CASE WHEN id % 2 = 0 THEN (id % 7 != 0) END,
                    cost_usd = printf('%.4f', (id % 13) * 0.01), retries = id % 4, approvals = id % 3, compactions = id % 2,
                    created_at = strftime('%Y-%m-%dT%H:%M:%S.0000000Z', created_at, '-' || (id % 30) || ' days'),
                    started_at = strftime('%Y-%m-%dT%H:%M:%S.0000000Z', created_at, '-' || (id % 30) || ' days'),
                    finished_at = strftime('%Y-%m-%dT%H:%M:%S.0000000Z', created_at, '-' || (id % 30) || ' days', '+' || (30 + id % 600) || ' seconds')
                WHERE id > 1
                """;
            vary.ExecuteNonQuery();
        }

        await box.StartDaemonAsync();
        var a = await box.WaitAsync((await box.CreateTaskAsync("bench:final", Scenarios.Prompt)).Id);
        var b = await box.WaitAsync((await box.CreateTaskAsync("bench:final", Scenarios.Prompt + " again")).Id);
        var runs = quick ? 10 : 30;
        async Task<double> TimeAsync(params string[] args)
        {
            await box.OffloadAsync(args); // warm the page cache
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var run = await box.OffloadAsync(args);
                if (run.ExitCode != 0)
                {
                    throw new InvalidOperationException($"offload {string.Join(' ', args)} failed: {run}");
                }

                times.Add(run.Elapsed.TotalMilliseconds);
            }

            return Stats.Median(times);
        }

        var stats = await TimeAsync("stats");
        var byModel = await TimeAsync("stats", "--since", "7d", "--by", "model");
        var byDay = await TimeAsync("stats", "--by", "day");
        var compare = await TimeAsync("compare", a.Id.ToString(CultureInfo.InvariantCulture), b.Id.ToString(CultureInfo.InvariantCulture));
        var byTag = await TimeAsync("compare", "--tag", "parser");
        var worst = new[] { stats, byModel, byDay, compare, byTag }.Max();
        return new Figure("stats and compare",
            $"with {Stored + 2:N0} tasks stored, median of {runs}: `stats` {Stats.Ms(stats)}, `stats --since 7d --by model` {Stats.Ms(byModel)}, "
            + $"`stats --by day` {Stats.Ms(byDay)}, `compare {a.Id} {b.Id}` {Stats.Ms(compare)}, `compare --tag parser` (20 tasks) {Stats.Ms(byTag)}",
            "—", "median < 80 ms each", worst < 80);
    }
}
