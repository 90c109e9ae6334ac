using System.Diagnostics;
using System.Text.RegularExpressions;
using Offload.Protocol;

namespace Offload.Tests.EndToEnd;

/// <summary>
/// The README's first command, <c>./install.sh &amp;&amp; offload run --model sim:demo "…"</c>, runs to succeeded on a fresh
/// machine: install.sh installs bubblewrap where it may (the real bwrap of this machine is left alone: its install step
/// runs with a PATH of fakes that record what they were asked), and with bubblewrap the demo needs no approval.
/// </summary>
public sealed partial class FreshMachineTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task TheReadmesFirstCommand_WithBubblewrap_RunsToSucceeded_WithoutAskingAnything()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var first = FirstCommand().Match(readme);
        Assert.True(first.Success, "the README's Try-it section has no `./install.sh && offload run …` line");
        Assert.True(File.Exists("/usr/bin/bwrap") || File.Exists("/bin/bwrap"), "this test needs bubblewrap installed");

        var run = await _h.OffloadAsync("run", "--json", "--model", first.Groups["model"].Value, first.Groups["prompt"].Value);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.DoesNotContain("bubblewrap is not available", run.Stderr);
        var task = System.Text.Json.JsonSerializer.Deserialize<TaskInfo>(run.Stdout, OffloadJson.Options)!;
        var done = await _h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.DoesNotContain(await _h.EventsAsync(task.Id), e => e is StatusChanged { To: OffloadTaskStatus.NeedsInput });
        Assert.Contains($"its changes on branch {done.Branch}", readme); // the README's `offload diff 1` line names it
    }

    [Theory]
    [InlineData("apt-get", "apt-get update -q|apt-get install -y -q bubblewrap")]
    [InlineData("dnf", "dnf install -y bubblewrap")]
    [InlineData("pacman", "pacman -S --noconfirm --needed bubblewrap")]
    [InlineData("zypper", "zypper --non-interactive install bubblewrap")]
    [InlineData("apk", "apk add bubblewrap")]
    public async Task InstallSh_AsRoot_InstallsBubblewrap_WithThePackageManagerItFinds(string manager, string calls)
    {
        using var fake = new FakeMachine(uid: 0);
        fake.PackageManager(manager);

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Equal(calls.Split('|'), fake.Calls());
        Assert.Contains("install.sh: bubblewrap installed", output);
        Assert.True(File.Exists(Path.Combine(fake.Bin, "bwrap")));
    }

    [Fact]
    public async Task InstallSh_AsAUserWithSudoWithoutAPassword_InstallsBubblewrapThroughSudo()
    {
        using var fake = new FakeMachine(uid: 1000);
        fake.PackageManager("apt-get");
        fake.Sudo(passwordless: true);

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Equal(["sudo -n true", "sudo -n apt-get update -q", "apt-get update -q", "sudo -n apt-get install -y -q bubblewrap", "apt-get install -y -q bubblewrap"], fake.Calls());
        Assert.Contains("install.sh: bubblewrap installed", output);
    }

    [Fact]
    public async Task InstallSh_WhenItMayNotInstall_SaysTheOneCommandToRun_AndInstallsNothing()
    {
        using var fake = new FakeMachine(uid: 1000);
        fake.PackageManager("dnf");
        fake.Sudo(passwordless: false);

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Equal(["sudo -n true"], fake.Calls());
        Assert.Contains("installing it needs root; run: sudo dnf install -y bubblewrap", output);
        Assert.False(File.Exists(Path.Combine(fake.Bin, "bwrap")));
    }

    [Fact]
    public async Task InstallSh_WhenThePackageManagerFails_SaysTheCommandToRun()
    {
        using var fake = new FakeMachine(uid: 0);
        fake.PackageManager("apt-get", fails: true);

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Contains("installing bubblewrap failed, so the agent's commands will ask before running; install it: apt-get install -y -q bubblewrap", output);
    }

    [Fact]
    public async Task InstallSh_WithNoKnownPackageManager_SaysWhatToInstall()
    {
        using var fake = new FakeMachine(uid: 0);

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Empty(fake.Calls());
        Assert.Contains("no known package manager was found (apt-get, dnf, pacman, zypper, apk); install bubblewrap", output);
    }

    [Fact]
    public async Task InstallSh_WithBubblewrapInstalled_DoesNothing()
    {
        using var fake = new FakeMachine(uid: 0);
        fake.PackageManager("apt-get");
        fake.Tool("bwrap", "exit 0");

        var (exit, output) = await fake.EnsureBubblewrapAsync();

        Assert.True(exit == 0, output);
        Assert.Empty(fake.Calls());
        Assert.Empty(output);
    }

    /// <summary>
    /// A PATH that holds only fakes: <c>id</c> (the uid asked for), package managers and <c>sudo</c> that append the
    /// command line they got to a log (an install puts a <c>bwrap</c> on that PATH). install.sh is sourced and its
    /// <c>ensure_bubblewrap</c> run by bash with that PATH, so nothing of this machine is installed or removed.
    /// </summary>
    private sealed class FakeMachine : IDisposable
    {
        private readonly string _root = Directory.CreateTempSubdirectory("offload-install-").FullName;

        public FakeMachine(int uid)
        {
            Directory.CreateDirectory(Bin);
            Tool("id", $"echo {uid}");
        }

        public string Bin => Path.Combine(_root, "bin");

        private string Log => Path.Combine(_root, "calls.log");

        public void Tool(string name, string body)
        {
            var path = Path.Combine(Bin, name);
            File.WriteAllText(path, $"#!/bin/sh\n{body}\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        public void PackageManager(string name, bool fails = false) => Tool(name, $"""
            echo "{name} $*" >> '{Log}'
            {(fails ? "exit 100" : "")}
            case "$*" in *bubblewrap*) printf '#!/bin/sh\n' > '{Bin}/bwrap'; /bin/chmod +x '{Bin}/bwrap' ;; esac
            """);

        public void Sudo(bool passwordless) => Tool("sudo", $"""
            echo "sudo $*" >> '{Log}'
            {(passwordless ? "" : "exit 1")}
            [ "$1" = -n ] && shift
            "$@"
            """);

        public string[] Calls() => File.Exists(Log) ? File.ReadAllLines(Log) : [];

        public async Task<(int Exit, string Output)> EnsureBubblewrapAsync()
        {
            var start = new ProcessStartInfo("/bin/bash")
            {
                ArgumentList = { "-c", $"source '{Path.Combine(RepositoryRoot(), "install.sh")}' && ensure_bubblewrap" },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.Environment["PATH"] = Bin;
            using var bash = Process.Start(start)!;
            var stdout = bash.StandardOutput.ReadToEndAsync();
            var stderr = bash.StandardError.ReadToEndAsync();
            await bash.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            return (bash.ExitCode, await stdout + await stderr);
        }

        public void Dispose() => Directory.Delete(_root, recursive: true);
    }

    /// <summary>Found from this source file's path (the build output may live anywhere).</summary>
    private static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string source = "")
    {
        var dir = new DirectoryInfo(Path.GetDirectoryName(source)!);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "install.sh")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("install.sh not found above " + source);
    }

    [GeneratedRegex("""^\./install\.sh && offload run --model (?<model>\S+) "(?<prompt>[^"]+)"$""", RegexOptions.Multiline)]
    private static partial Regex FirstCommand();
}
