using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Microsoft.Playwright.Assertions;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Ui;

/// <summary>
/// The dashboard in a real Chromium against the real daemon and the Simulator: the board follows tasks live, and the
/// task page's approve, reply and merge do what the CLI's do (the same services), refusals in the same words.
/// </summary>
public sealed partial class DashboardTests(Chromium chromium) : IClassFixture<Chromium>, IAsyncLifetime
{
    private static readonly LocatorAssertionsToHaveAttributeOptions Long = new() { Timeout = 60_000 };

    private readonly OffloadHarness _h = new();

    public Task InitializeAsync()
    {
        var settings = Path.Combine(_h.Repo, ".claude", "settings.json");
        Directory.CreateDirectory(Path.GetDirectoryName(settings)!);
        File.WriteAllText(settings, """{ "permissions": { "ask": ["Bash(touch:*)"] } }""");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private string AskingModel(string name) => _h.Scenario(name, Scenario(
        Tool("Bash", new { command = "touch approved.txt" }),
        Final("Created approved.txt.")));

    private static string Id(TaskInfo t) => t.Id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Board_MovesACardLive_WhenItsTaskChangesStatus_AndNeedsInputStandsOut()
    {
        var (page, _) = await chromium.SignedInAsync(_h);
        await Expect(page.GetByText("No tasks yet")).ToBeVisibleAsync();
        var earlier = await _h.WaitAsync((await _h.RunTaskAsync(_h.Scenario("quick", Scenario(Final("Nothing to change."))), "look around")).Id);
        await Expect(page.Locator($"[data-column=done] a.card[data-id='{earlier.Id}']")).ToBeVisibleAsync();

        var task = await _h.RunTaskAsync(AskingModel("ask"), "create a file");
        var card = page.Locator($"a.card[data-id='{task.Id}']");

        await Expect(page.Locator($"[data-column=needs_input] a.card[data-id='{task.Id}']")).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await Expect(card).ToHaveClassAsync(new Regex(@"\bneeds_input\b"));
        await Expect(card.Locator(".flag")).ToHaveTextAsync("NEEDS INPUT");
        await Expect(card).ToContainTextAsync("create a file");
        await Expect(card).ToContainTextAsync(task.Model);
        Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(AppContext.BaseDirectory, "screenshots", "board.png") });

        Assert.Equal(0, (await _h.OffloadAsync("approve", Id(task))).ExitCode);

        await Expect(page.Locator($"[data-column=done] a.card[data-id='{task.Id}']")).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await Expect(card).ToHaveAttributeAsync("data-status", "succeeded");
        await Expect(page.Locator("[data-column=needs_input] a.card")).ToHaveCountAsync(0);

        // Keyboard: the card takes the focus, and Enter opens the task.
        await card.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page).ToHaveURLAsync(new Regex($"#/task/{task.Id}$"));
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-status", "succeeded");
    }

    [Fact]
    public async Task ApprovingFromTheBrowser_ResumesTheTask()
    {
        var task = await _h.RunTaskAsync(AskingModel("approve"), "create a file");
        var (page, _) = await chromium.SignedInAsync(_h);
        await page.GotoAsync($"{page.Url}#/task/{task.Id}");

        await Expect(page.Locator("#ask-panel")).ToContainTextAsync("Waiting for approval: Bash", new() { Timeout = 60_000 });
        await Expect(page.Locator("#ask-panel")).ToContainTextAsync("touch approved.txt");
        await page.Locator("#approve").ClickAsync();

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-status", "succeeded", Long);
        await Expect(page.Locator("#log")).ToContainTextAsync("Created approved.txt.");
        await Expect(page.Locator("#ask-panel")).ToHaveCountAsync(0);
        var done = await _h.WaitAsync(task.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("", _h.Git("show", $"{done.Branch}:approved.txt"));
        Assert.Contains(await _h.EventsAsync(task.Id), e => e is PermissionAnswered { Allowed: true });
    }

    [Fact]
    public async Task DenyingFromTheBrowser_GivesTheAgentTheReason()
    {
        var task = await _h.RunTaskAsync(AskingModel("deny"), "create a file");
        var (page, _) = await chromium.SignedInAsync(_h);
        await page.GotoAsync($"{page.Url}#/task/{task.Id}");

        await page.Locator("#deny-reason").FillAsync("not in this folder");
        await page.Locator("#deny").ClickAsync();

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-status", "succeeded", Long);
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is PermissionAnswered { Allowed: false, Reason: "not in this folder" });
        Assert.Contains("not in this folder", events.OfType<ToolResulted>().Single().Output);
    }

    [Fact]
    public async Task AReplyFromTheBrowser_Runs()
    {
        var model = _h.Scenario("reply", new
        {
            name = "reply",
            turns = new[] { Final("First answer.") },
            rules = new[] { new { whenContains = "and the second", afterTurn = 1, turn = Final("Second answer, after your reply.") } },
        });
        var task = await _h.WaitAsync((await _h.RunTaskAsync(model, "answer twice")).Id);
        var (page, _) = await chromium.SignedInAsync(_h);
        await page.GotoAsync($"{page.Url}#/task/{task.Id}");
        await Expect(page.Locator("#log")).ToContainTextAsync("First answer.");

        await page.Locator("#reply-text").FillAsync("and the second one, please");
        await page.Locator("#reply button[type=submit]").ClickAsync();

        await Expect(page.Locator("#log")).ToContainTextAsync("and the second one, please", new() { Timeout = 60_000 });
        await Expect(page.Locator("#log")).ToContainTextAsync("Second answer, after your reply.", new() { Timeout = 60_000 });
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-status", "succeeded", Long);
        var events = await _h.EventsAsync(task.Id);
        Assert.Contains(events, e => e is UserMessage { Text: "and the second one, please", Source: "reply" });
    }

    [Fact]
    public async Task AMergeFromTheBrowser_LandsOnTheUsersBranch_AndARefusedMergeShowsWhy()
    {
        var model = _h.Scenario("edit", Scenario(
            Tool("Read", new { file_path = "app.py" }),
            Tool("Edit", new { file_path = "app.py", old_string = "hello", new_string = "hello, world" }),
            Final("Changed the greeting.")));
        var task = await _h.WaitAsync((await _h.RunTaskAsync(model, "change the greeting")).Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, task.Status);
        var (page, _) = await chromium.SignedInAsync(_h);
        await page.GotoAsync($"{page.Url}#/task/{task.Id}");

        // A local edit to the same file: the merge is refused, in the CLI's words, and nothing changes.
        File.WriteAllText(Path.Combine(_h.Repo, "app.py"), "print('my local edit')\n");
        var head = _h.Git("rev-parse", "HEAD").Trim();
        var cli = await _h.OffloadAsync("merge", Id(task));
        Assert.Equal(11, cli.ExitCode);
        var refusal = cli.Stderr.Split('\n')[0]["offload: ".Length..];
        await page.Locator("#merge").ClickAsync();
        await Expect(page.Locator("#message .alert")).ToContainTextAsync(refusal);
        Assert.Equal(head, _h.Git("rev-parse", "HEAD").Trim());
        Assert.Equal("print('my local edit')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));

        _h.Git("checkout", "--", "app.py");
        await page.Locator("#merge").ClickAsync();

        await Expect(page.Locator("#message .notice")).ToContainTextAsync($"merged task {task.Id} into main as");
        Assert.Equal(head, _h.Git("rev-parse", "HEAD^").Trim());
        Assert.Equal("print('hello, world')\n", File.ReadAllText(Path.Combine(_h.Repo, "app.py")));
        Assert.StartsWith("change the greeting", _h.Git("log", "-1", "--format=%B"));
    }

    [Fact]
    public async Task TheDiffTab_ShowsAFileTreeAndHighlightedLines()
    {
        var model = _h.Scenario("write", Scenario(
            Tool("Write", new { file_path = "src/tool.py", content = "def greet(name):\n    return f'hi {name}'\n" }),
            Final("Added a tool.")));
        var task = await _h.WaitAsync((await _h.RunTaskAsync(model, "add a tool")).Id);
        var (page, _) = await chromium.SignedInAsync(_h);
        await page.GotoAsync($"{page.Url}#/task/{task.Id}");

        await page.Locator("#tab-diff").ClickAsync();

        await Expect(page.Locator(".tree")).ToContainTextAsync("src/");
        await Expect(page.Locator(".tree")).ToContainTextAsync("tool.py +2 −0");
        await Expect(page.Locator(".file tr.add .hljs-keyword").First).ToHaveTextAsync("def");
    }

    [Fact]
    public async Task WithoutTheToken_TheBrowserIsRefused_AndACrossOriginPostIsRefused()
    {
        var slow = await _h.RunTaskAsync(_h.Scenario("slow", Scenario(Final("done", delayMs: 60_000))), "take your time");
        var ui = await Chromium.UiAsync(_h);
        var stranger = await (await chromium.Browser.NewContextAsync()).NewPageAsync();
        var refused = await stranger.GotoAsync($"http://127.0.0.1:{ui.Port}/");
        Assert.Equal(401, refused?.Status);
        await Expect(stranger.Locator("body")).ToContainTextAsync("run `offload ui`");

        // A signed-in browser visits another local page, served from another port of 127.0.0.1: the same site, so the
        // cookie goes along. It posts to the dashboard.
        var (page, _) = await chromium.SignedInAsync(_h);
        using var evil = new HttpListener();
        var evilPort = FreePort();
        evil.Prefixes.Add($"http://127.0.0.1:{evilPort}/");
        evil.Start();
        var serving = ServeAsync(evil, "<!doctype html><p>hello</p>");
        await page.GotoAsync($"http://127.0.0.1:{evilPort}/");
        var response = page.WaitForResponseAsync(r => r.Url.EndsWith($"/v1/tasks/{slow.Id}/cancel", StringComparison.Ordinal));
        await page.EvaluateAsync($"() => fetch('http://127.0.0.1:{ui.Port}/v1/tasks/{slow.Id}/cancel', {{ method: 'POST', mode: 'no-cors', credentials: 'include' }}).catch(() => null)");

        Assert.Equal(403, (await response).Status);
        Assert.Equal(OffloadTaskStatus.Running, (await _h.ShowAsync(slow.Id)).Status);
        Assert.Equal(0, (await _h.OffloadAsync("cancel", Id(slow))).ExitCode);
        evil.Stop();
        await serving;
    }

    private static async Task ServeAsync(HttpListener listener, string html)
    {
        try
        {
            while (true)
            {
                var context = await listener.GetContextAsync();
                var body = System.Text.Encoding.UTF8.GetBytes(html);
                context.Response.ContentType = "text/html";
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
        {
        }
    }

    private static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
