using System.Globalization;
using System.Net;
using System.Net.ServerSentEvents;
using System.Net.Sockets;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Ui;

/// <summary>
/// The dashboard's loopback listener over real HTTP against the real daemon: closed until asked, signed in by a one-time
/// token, and refusing requests without a session (401), under another Host name (421) or from another origin (403).
/// </summary>
public sealed class UiListenerTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Listener_StaysClosedUntilOfflineUiAsks_ThenListensOnLoopbackOnly()
    {
        Assert.Equal(0, (await _h.OffloadAsync("ls")).ExitCode); // starts the daemon
        var pid = await DaemonPidAsync();
        Assert.Empty(ListeningSockets(pid));

        var ui = await UiAsync();

        Assert.Equal([$"127.0.0.1:{ui.Port}"], ListeningSockets(pid));
        Assert.StartsWith($"http://127.0.0.1:{ui.Port}/?token=", ui.Url);
    }

    [Fact]
    public async Task EachUiCall_GivesAFreshToken_ThatSignsInOnce_WithAnHttpOnlyStrictCookie_AndLeavesTheAddressBar()
    {
        var first = await UiAsync();
        var second = await UiAsync();
        Assert.Equal(first.Port, second.Port);
        Assert.NotEqual(first.Url, second.Url);
        using var http = Client();

        using var signIn = await http.GetAsync(first.Url);

        Assert.Equal(HttpStatusCode.SeeOther, signIn.StatusCode);
        Assert.Equal("/", signIn.Headers.Location?.OriginalString);
        var cookie = Assert.Single(signIn.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"offload-{first.Port}=", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("no-referrer", signIn.Headers.GetValues("Referrer-Policy").Single());

        using var again = await http.GetAsync(first.Url);
        Assert.Equal(HttpStatusCode.Unauthorized, again.StatusCode);
        Assert.Equal("""
            offload: this sign-in link was used already or has expired (each link signs in once, within 15 minutes)
              next: run `offload ui` for a fresh one

            """, await again.Content.ReadAsStringAsync());

        var session = cookie[..cookie.IndexOf(';', StringComparison.Ordinal)];
        using var page = await SendAsync(http, HttpMethod.Get, $"http://127.0.0.1:{first.Port}/", session);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html; charset=utf-8", page.Content.Headers.ContentType?.ToString());
        Assert.Contains("frame-ancestors 'none'", page.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Theory]
    [InlineData("GET", "/v1/tasks")]
    [InlineData("GET", "/v1/tasks/1/events?follow=1")]
    [InlineData("GET", "/v1/tasks/stream")]
    [InlineData("POST", "/v1/tasks/1/cancel")]
    [InlineData("POST", "/v1/tasks/1/merge")]
    public async Task WithoutTheTokenOrItsCookie_EveryApiRequestGets401(string method, string path)
    {
        var ui = await UiAsync();
        using var http = Client();

        using var response = await SendAsync(http, new HttpMethod(method), $"http://127.0.0.1:{ui.Port}{path}", cookie: null, origin: $"http://127.0.0.1:{ui.Port}");
        using var forged = await SendAsync(http, new HttpMethod(method), $"http://127.0.0.1:{ui.Port}{path}", $"offload-{ui.Port}=made-up", origin: $"http://127.0.0.1:{ui.Port}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        var error = await ErrorAsync(response);
        Assert.Equal(ErrorCodes.Unauthorized, error.Code);
        Assert.Equal("run `offload ui`", error.Hint);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/assets/app.js")]
    [InlineData("/assets/vendor/highlight.min.js")]
    public async Task WithoutTheTokenOrItsCookie_APageGets401_InWords(string path)
    {
        var ui = await UiAsync();
        using var http = Client();

        using var response = await http.GetAsync($"http://127.0.0.1:{ui.Port}{path}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("""
            offload: this dashboard needs a sign-in: open it with the link `offload ui` prints (the link signs this browser in)
              next: run `offload ui`

            """, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("evil.example:{port}", HttpStatusCode.MisdirectedRequest)]
    [InlineData("evil.example", HttpStatusCode.MisdirectedRequest)]
    [InlineData("127.0.0.1:1", HttpStatusCode.MisdirectedRequest)]
    [InlineData("localhost.evil.example:{port}", HttpStatusCode.MisdirectedRequest)]
    [InlineData("127.0.0.1:{port}", HttpStatusCode.OK)]
    [InlineData("localhost:{port}", HttpStatusCode.OK)]
    public async Task AHostNameOtherThanTheLoopbacks_Gets421_EvenWithASession(string host, HttpStatusCode expected)
    {
        var (port, session) = await SignInAsync();
        using var http = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/v1/tasks");
        request.Headers.Host = host.Replace("{port}", port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        request.Headers.Add("Cookie", session);

        using var response = await http.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task AStateChangingRequestFromAnotherOrigin_Gets403_AndChangesNothing_WhileTheSameOriginsGoesThrough()
    {
        var model = _h.Scenario("slow", Scenario(Final("done", delayMs: 60_000)));
        var task = await _h.RunTaskAsync(model, "take your time");
        var (port, session) = await SignInAsync();
        using var http = Client();
        var cancel = $"http://127.0.0.1:{port}/v1/tasks/{task.Id}/cancel";

        foreach (var (origin, site) in new (string?, string?)[]
                 {
                     ($"http://127.0.0.1:{port + 1}", null), // another local page: same site, so the Strict cookie went along
                     ("http://evil.example", null),
                     ($"http://localhost:{port}.evil.example", null),
                     ("null", null),
                     (null, "cross-site"),
                     (null, "same-site"),
                 })
        {
            using var refused = await SendAsync(http, HttpMethod.Post, cancel, session, origin, site);
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, $"{origin ?? site}: {refused.StatusCode}");
            Assert.EndsWith("was refused: only the dashboard's own pages may change anything", (await ErrorAsync(refused)).Message);
        }

        Assert.Equal(OffloadTaskStatus.Running, (await _h.ShowAsync(task.Id)).Status);

        using var own = await SendAsync(http, HttpMethod.Post, cancel, session, $"http://localhost:{port}", "same-origin");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        Assert.Equal(OffloadTaskStatus.Cancelled, (await _h.WaitAsync(task.Id)).Status);
    }

    [Fact]
    public async Task TheDaemonsOwnControls_AreNotOnTheListener()
    {
        var (port, session) = await SignInAsync();
        using var http = Client();

        using var stop = await SendAsync(http, HttpMethod.Post, $"http://127.0.0.1:{port}/v1/daemon/stop", session, $"http://127.0.0.1:{port}");
        using var open = await SendAsync(http, HttpMethod.Post, $"http://127.0.0.1:{port}/v1/ui", session, $"http://127.0.0.1:{port}");

        Assert.Equal(HttpStatusCode.NotFound, stop.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, open.StatusCode);
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "status")).ExitCode);
    }

    [Fact]
    public async Task UiEnabledInTheConfig_OpensTheListenerAtStart_OnTheConfiguredPort()
    {
        var port = FreePort();
        Directory.CreateDirectory(Path.Combine(_h.OffloadHome, "config"));
        File.WriteAllText(Path.Combine(_h.OffloadHome, "config", "config.json"), $$"""{ "ui": { "enabled": true, "port": {{port}} } }""");

        Assert.Equal(0, (await _h.OffloadAsync("ls")).ExitCode);

        Assert.Equal([$"127.0.0.1:{port}"], ListeningSockets(await DaemonPidAsync()));
        using var http = Client();
        using var response = await http.GetAsync($"http://127.0.0.1:{port}/");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(port, (await UiAsync()).Port);
    }

    [Fact]
    public async Task AnOutOfRangePort_IsRefusedWithItsPlace()
    {
        Directory.CreateDirectory(Path.Combine(_h.OffloadHome, "config"));
        File.WriteAllText(Path.Combine(_h.OffloadHome, "config", "config.json"), """{ "ui": { "port": 70000 } }""");

        var result = await _h.OffloadAsync("ui", "--no-open");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ui.port is 70000; it is a TCP port from 1 to 65535, or 0 for a free one chosen at random", result.Stderr);
    }

    [Fact]
    public async Task TheBoardStream_SendsTheTasks_ThenEachTaskAsItChanges()
    {
        var first = await _h.WaitAsync((await _h.RunTaskAsync(_h.Scenario("one", Scenario(Final("one"))), "first")).Id);
        var (port, session) = await SignInAsync();
        using var http = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/v1/tasks/stream");
        request.Headers.Add("Cookie", session);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = SseParser.Create(await response.Content.ReadAsStreamAsync(timeout.Token)).EnumerateAsync(timeout.Token).GetAsyncEnumerator(timeout.Token);

        Assert.True(await events.MoveNextAsync());
        Assert.Equal("snapshot", events.Current.EventType);
        var snapshot = JsonSerializer.Deserialize<Page<TaskInfo>>(events.Current.Data, OffloadJson.Options)!;
        Assert.Equal([(first.Id, OffloadTaskStatus.Succeeded)], snapshot.Items.Select(t => (t.Id, t.Status)));

        var second = await _h.RunTaskAsync(_h.Scenario("two", Scenario(Final("two"))), "second");
        var seen = new List<OffloadTaskStatus>();
        while (seen.LastOrDefault() != OffloadTaskStatus.Succeeded && await events.MoveNextAsync())
        {
            Assert.Equal("task", events.Current.EventType);
            var task = JsonSerializer.Deserialize<TaskInfo>(events.Current.Data, OffloadJson.Options)!;
            Assert.Equal(second.Id, task.Id);
            if (seen.LastOrDefault() != task.Status || seen.Count == 0)
            {
                seen.Add(task.Status);
            }
        }

        Assert.Equal(OffloadTaskStatus.Succeeded, seen[^1]);
        Assert.Contains(OffloadTaskStatus.Running, seen);
    }

    private static async Task<ApiError> ErrorAsync(HttpResponseMessage response) =>
        JsonSerializer.Deserialize<ApiError>(await response.Content.ReadAsStringAsync(), OffloadJson.Options)!;

    private async Task<UiResponse> UiAsync()
    {
        var result = await _h.OffloadAsync("ui", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonSerializer.Deserialize<UiResponse>(result.Stdout, OffloadJson.Options)!;
    }

    /// <summary>Signs in with a fresh link; the port and the session cookie (<c>name=value</c>).</summary>
    private async Task<(int Port, string Cookie)> SignInAsync()
    {
        var ui = await UiAsync();
        using var http = Client();
        using var response = await http.GetAsync(ui.Url);
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        var cookie = response.Headers.GetValues("Set-Cookie").Single();
        return (ui.Port, cookie[..cookie.IndexOf(';', StringComparison.Ordinal)]);
    }

    private static HttpClient Client() => new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, UseProxy = false })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string url, string? cookie, string? origin = null, string? fetchSite = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (fetchSite is not null)
        {
            request.Headers.Add("Sec-Fetch-Site", fetchSite);
        }

        if (method == HttpMethod.Post)
        {
            request.Content = new StringContent("");
        }

        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private async Task<int> DaemonPidAsync()
    {
        var status = await _h.OffloadAsync("daemon", "status", "--json");
        using var json = JsonDocument.Parse(status.Stdout);
        return json.RootElement.GetProperty("pid").GetInt32();
    }

    /// <summary>The TCP addresses the process listens on, from the kernel (its socket fds matched against /proc/net/tcp and tcp6).</summary>
    internal static List<string> ListeningSockets(int pid)
    {
        var inodes = Directory.GetFiles($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget ?? "")
            .Where(t => t.StartsWith("socket:[", StringComparison.Ordinal)).Select(t => t[8..^1]).ToHashSet(StringComparer.Ordinal);
        var listening = new List<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f[3] == "0A" && inodes.Contains(f[9]))
                {
                    var (address, port) = (f[1][..f[1].IndexOf(':', StringComparison.Ordinal)], int.Parse(f[1][(f[1].IndexOf(':', StringComparison.Ordinal) + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    var ip = address.Length == 8
                        ? new IPAddress(BitConverter.GetBytes(uint.Parse(address, NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
                        : new IPAddress(Convert.FromHexString(address));
                    listening.Add($"{ip}:{port}");
                }
            }
        }

        return listening;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
