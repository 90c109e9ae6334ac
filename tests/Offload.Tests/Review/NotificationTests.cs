using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Review;

/// <summary>Notifications: a webhook received by a real HTTP listener on loopback, and <c>notify-send</c> where it exists.</summary>
public sealed class NotificationTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();
    private readonly HttpListener _listener = new();
    private readonly Channel<(string Body, string ContentType)> _received = Channel.CreateUnbounded<(string, string)>();
    private string _url = "";
    private string _notifyLog = "";

    public Task InitializeAsync()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _url = $"http://127.0.0.1:{port}/hook/";
        _listener.Prefixes.Add(_url);
        _listener.Start();
        _ = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                using var reader = new StreamReader(context.Request.InputStream);
                _received.Writer.TryWrite((await reader.ReadToEndAsync(), context.Request.ContentType ?? ""));
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        });

        // the daemon reads its config at start, and the first offload command starts it
        var configDir = Path.Combine(_h.OffloadHome, "config");
        Directory.CreateDirectory(configDir);
        File.WriteAllText(Path.Combine(configDir, "config.json"), JsonSerializer.Serialize(new
        {
            notifications = new { webhookUrl = _url, linkTemplate = "http://127.0.0.1:7070/tasks/{id}" },
            permissions = new { ask = new[] { "Bash(echo needs-approval:*)" } },
        }));

        // a notify-send that writes down what it was asked to show
        _notifyLog = Path.Combine(_h.Root, "notify-send.log");
        _h.InstallOnPath("notify-send", $"#!/bin/sh\nprintf '%s|' \"$@\" | tr '\\n' '~' >> '{_notifyLog}'\necho >> '{_notifyLog}'\n");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        _listener.Close();
    }

    private async Task<TaskNotification> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (body, contentType) = await _received.Reader.ReadAsync(timeout.Token);
        Assert.StartsWith("application/json", contentType);
        return JsonSerializer.Deserialize<TaskNotification>(body, OffloadJson.Options)!;
    }

    [Fact]
    public async Task Webhook_GetsSucceededAndLimited_WithIdStatusTitleSummaryLinkAndSlackText()
    {
        var ok = await _h.RunTaskAsync(_h.Scenario("ok", Scenario(Final("Everything is fine."))), "check everything");
        var succeeded = await NextAsync();

        Assert.Equal(ok.Id, succeeded.Id);
        Assert.Equal("succeeded", succeeded.Status);
        Assert.Equal("check everything", succeeded.Title);
        Assert.Equal("Everything is fine.", succeeded.Summary);
        Assert.Null(succeeded.Reason);
        Assert.Equal($"http://127.0.0.1:7070/tasks/{ok.Id}", succeeded.Link);
        Assert.Equal($"offload show {ok.Id}", succeeded.Command);
        Assert.Equal(ok.Branch, succeeded.Branch);
        Assert.Equal($"Offload task {ok.Id} *succeeded*: check everything\nEverything is fine.\n`offload show {ok.Id}`", succeeded.Text);

        var limited = await _h.RunTaskAsync(_h.Scenario("loop", Scenario(
            Tool("Bash", new { command = "true" }), Tool("Bash", new { command = "true" }), Final("x"))), "loop a bit", "--max-turns", "1");
        var stopped = await NextAsync();
        Assert.Equal((limited.Id, "limited"), (stopped.Id, stopped.Status));
        Assert.Contains("turn limit reached", stopped.Reason);
        Assert.Contains("turn limit reached", stopped.Text);

        // the desktop got both, through notify-send
        await _h.WaitAsync(limited.Id);
        var desktop = File.ReadAllLines(_notifyLog);
        Assert.Equal(2, desktop.Length);
        Assert.Equal($"--app-name=Offload|--urgency=normal|Offload: task {ok.Id} succeeded|check everything~Everything is fine.~offload show {ok.Id}|", desktop[0]);
        Assert.Contains($"Offload: task {limited.Id} limited|", desktop[1]);
    }

    [Fact]
    public async Task Webhook_GetsNeedsInput_WithTheCommandThatAnswersIt()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("ask", Scenario(Tool("Bash", new { command = "echo needs-approval now" }), Final("x"))), "ask first");

        var asked = await NextAsync();

        Assert.Equal((task.Id, "needs_input"), (asked.Id, asked.Status));
        Assert.Equal($"offload approve {task.Id}", asked.Command);
        Assert.Contains($"`offload approve {task.Id}` or `offload deny {task.Id}`", asked.Text);
        Assert.Equal(0, (await _h.OffloadAsync("cancel", task.Id.ToString(CultureInfo.InvariantCulture))).ExitCode);
    }

    [Fact]
    public async Task AWebhookThatIsDown_IsLoggedAndTheTaskIsUntouched()
    {
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        File.WriteAllText(Path.Combine(_h.OffloadHome, "config", "config.json"),
            JsonSerializer.Serialize(new { notifications = new { webhookUrl = $"http://127.0.0.1:{port}/down" } }));

        var task = await _h.RunTaskAsync(_h.Scenario("fine", Scenario(Final("All good."))), "all good");
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal((OffloadTaskStatus.Succeeded, "All good."), (done.Status, done.Summary));
        await FileContainsAsync(Path.Combine(_h.OffloadHome, "data", "daemon.log"), $"the webhook for task {task.Id} failed");
    }

    /// <summary>Waits for <paramref name="text"/> to appear in the file, re-reading it on each change.</summary>
    private static async Task FileContainsAsync(string path, string text)
    {
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path)) { EnableRaisingEvents = true };
        var changed = Channel.CreateUnbounded<bool>();
        watcher.Changed += (_, _) => changed.Writer.TryWrite(true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!File.ReadAllText(path).Contains(text, StringComparison.Ordinal))
        {
            await changed.Reader.ReadAsync(timeout.Token);
        }
    }

    [Fact]
    public async Task Webhook_GetsFailed_AndNothingForCancelled()
    {
        var slow = await _h.RunTaskAsync(_h.Scenario("slow", Scenario(Tool("Bash", new { command = "sleep 60" }), Final("x"))), "slow");
        Assert.Equal(0, (await _h.OffloadAsync("cancel", slow.Id.ToString(CultureInfo.InvariantCulture))).ExitCode);
        var bad = await _h.RunTaskAsync(_h.Scenario("bad", new
        {
            name = "bad",
            turns = new[] { new { text = "", faults = new[] { new { kind = "status", status = 400, times = 100 } } } },
        }), "fails");

        var failed = await NextAsync();

        Assert.Equal((bad.Id, "failed"), (failed.Id, failed.Status));
        Assert.NotNull(failed.Reason);
        Assert.False(_received.Reader.TryRead(out _));
    }
}
