using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;
using Offload.Protocol;

namespace Offload.Bench;

/// <summary>Issue 17's figures: the dashboard's board with 1,000 tasks stored, and what an open dashboard adds to the daemon.</summary>
public sealed partial class Bench
{
    /// <summary>
    /// 1,000 finished tasks stored and one task running (a turn every 100 ms). The board is loaded in Debian's chromium
    /// (Playwright, /usr/bin/chromium or OFFLOAD_TEST_CHROMIUM) once to warm up, then 10 (quick: 5) times: first
    /// contentful paint and the moment its 1,000 cards are in the page (<c>performance.mark("board-drawn")</c>, painted on
    /// the next frame), medians. Memory: the daemon's RSS and PSS with the running task and the listener closed, then
    /// with the board and the running task's page open and live for 50 more turns.
    /// </summary>
    private async Task<Figure> DashboardAsync()
    {
        const int Stored = 1000;
        var chromium = Environment.GetEnvironmentVariable("OFFLOAD_TEST_CHROMIUM") is { Length: > 0 } c ? c : "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"no Chromium at {chromium}: apt-get install chromium (scripts/test-deps.sh does it)");
        }

        await using var sim = await SimulatorAsync(Scenarios.Final(), Scenarios.Endless("endless", 100));
        await using var box = new Sandbox(offload, sim.BaseUrl);
        await FillStoreAsync(box, Stored - 1);
        await box.StartDaemonAsync();
        var busy = await box.CreateTaskAsync("bench:endless", Scenarios.Prompt);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var turn = (await sim.WaitForRequestAsync(r => r.Model == "endless" && r.TurnIndex >= 20, timeout.Token)).TurnIndex;
        var closed = Procfs.MemoryOf([box.DaemonPid]);

        var ui = JsonSerializer.Deserialize<UiResponse>((await box.OffloadAsync("ui", "--json")).Stdout, OffloadJson.Options)!;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = chromium, Headless = true, ChromiumSandbox = false });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        var board = await context.NewPageAsync();
        await board.GotoAsync(ui.Url); // signs in and lands on the board
        await board.WaitForFunctionAsync("() => document.body.dataset.board === 'drawn'");
        var cards = await board.Locator("a.card").CountAsync();
        if (cards != Stored)
        {
            throw new InvalidOperationException($"the board shows {cards} cards, not {Stored}");
        }

        var paint = new List<double>();
        var drawn = new List<double>();
        for (var i = 0; i < (quick ? 5 : 10); i++)
        {
            await board.ReloadAsync();
            await board.WaitForFunctionAsync("() => document.body.dataset.board === 'drawn'");
            var times = await board.EvaluateAsync<double[]>("""
                () => new Promise(done => requestAnimationFrame(() => setTimeout(() => done([
                    performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1,
                    performance.getEntriesByName("board-drawn")[0].startTime]))))
                """);
            paint.Add(times[0]);
            drawn.Add(times[1]);
        }

        var task = await context.NewPageAsync();
        await task.GotoAsync($"http://127.0.0.1:{ui.Port}/#/task/{busy.Id}");
        await task.Locator("#log .ev").First.WaitForAsync();
        var later = await sim.WaitForRequestAsync(r => r.Model == "endless" && r.TurnIndex >= turn + 50, timeout.Token);
        await task.Locator($"#log [data-type='message.assistant']").Last.WaitForAsync();
        var open = Procfs.MemoryOf([box.DaemonPid]);
        await box.OffloadAsync("cancel", busy.Id.ToString(CultureInfo.InvariantCulture));

        var rss = open.RssMiB - closed.RssMiB;
        var pss = open.PssMiB - closed.PssMiB;
        var first = Stats.Median(paint);
        var ready = Stats.Median(drawn);
        return new Figure("dashboard",
            $"board with {Stored:N0} tasks, median of {paint.Count}: first contentful paint {Stats.Ms(first)}, all cards drawn {Stats.Ms(ready)}; "
            + $"daemon with a running task: listener closed {Stats.MiB(closed.RssMiB)} RSS / {Stats.MiB(closed.PssMiB)} PSS, "
            + $"board and task page open and live for {later.TurnIndex - turn} turns {Stats.MiB(open.RssMiB)} / {Stats.MiB(open.PssMiB)} (+{Stats.MiB(rss)} RSS, +{Stats.MiB(pss)} PSS)",
            "—", "board drawn < 300 ms; < 10 MiB more with the dashboard open", ready < 300 && rss < 10);
    }
}
