using System.Text.Json;
using Microsoft.Playwright;
using Offload.Protocol;
using Offload.Tests.EndToEnd;

namespace Offload.Tests.Ui;

/// <summary>
/// A real Chromium driven by Playwright: Debian's <c>chromium</c> package (scripts/test-deps.sh installs it), never a
/// browser Playwright downloads. Missing, it fails every browser test with what to install, rather than skip them.
/// </summary>
public sealed class Chromium : IAsyncLifetime
{
    /// <summary>The browser: OFFLOAD_TEST_CHROMIUM, else Debian's.</summary>
    public static string ExecutablePath => Environment.GetEnvironmentVariable("OFFLOAD_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("the browser did not start");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"the dashboard's browser tests need Chromium at {ExecutablePath}, and there is none: run scripts/test-deps.sh " +
                "(as root it installs Debian's chromium package: apt-get install chromium), or point OFFLOAD_TEST_CHROMIUM at a Chromium");
        }

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            ChromiumSandbox = false, // tests run as root (as CI does), where Chromium's own sandbox cannot start
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }

    /// <summary>A fresh browser profile signed in to the harness's daemon with a link from <c>offload ui</c>, on the board.</summary>
    public async Task<(IPage Page, UiResponse Ui)> SignedInAsync(OffloadHarness h)
    {
        var ui = await UiAsync(h);
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync(ui.Url);
        Assert.Equal(200, response?.Status);
        Assert.Equal($"http://127.0.0.1:{ui.Port}/", page.Url); // the token left the address bar
        return (page, ui);
    }

    public static async Task<UiResponse> UiAsync(OffloadHarness h)
    {
        var result = await h.OffloadAsync("ui", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonSerializer.Deserialize<UiResponse>(result.Stdout, OffloadJson.Options)!;
    }
}
