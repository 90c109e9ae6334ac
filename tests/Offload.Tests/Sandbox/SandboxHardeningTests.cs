using System.Globalization;
using System.Text.Json;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Sandbox;

/// <summary>
/// Issue 14, items 2, 3, 4 and 6, through the real daemon and real bubblewrap: root in the sandbox has no
/// capabilities, setuid bits neither work nor survive, credentials are hidden and <c>.worktreeinclude</c> values never
/// reach the journal, and a command that exhausts processes, memory or disk is killed with the reason. On this
/// project's machines (and CI) the daemon runs as root, which is what makes the first and third of these matter.
/// </summary>
public sealed class SandboxHardeningTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private async Task<(TaskInfo Done, List<ToolResulted> Results, string Journal)> RunScriptAsync(string name, params object[] turns)
    {
        var task = await _h.RunTaskAsync(_h.Scenario(name, Scenario([.. turns, Final("done")])), name);
        return await FinishedAsync(task.Id, turns.Length);
    }

    private async Task<(TaskInfo Done, List<ToolResulted> Results, string Journal)> FinishedAsync(long id, int calls)
    {
        var done = await _h.WaitAsync(id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded, $"task {id} ended {done.Status}: {done.Error}");
        var journal = await _h.OffloadAsync("logs", "--json", id.ToString(CultureInfo.InvariantCulture));
        var results = (await _h.EventsAsync(id)).OfType<ToolResulted>().ToList();
        Assert.Equal(calls, results.Count);
        return (done, results, journal.Stdout);
    }

    private static void AssertBlocked(ToolResulted result, string expected)
    {
        Assert.True(result.IsError, $"expected a failure, got: {result.Output}");
        Assert.Contains(expected, result.Output, StringComparison.Ordinal);
    }

    private async Task<int> DaemonPidAsync()
    {
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "start")).ExitCode);
        using var status = JsonDocument.Parse((await _h.OffloadAsync("daemon", "status", "--json")).Stdout);
        return status.RootElement.GetProperty("pid").GetInt32();
    }

    private void UserConfig(string json)
    {
        Directory.CreateDirectory(Path.Combine(_h.OffloadHome, "config"));
        File.WriteAllText(Path.Combine(_h.OffloadHome, "config", "config.json"), json);
    }

    [Fact]
    public async Task RootInTheSandbox_HasNoCapabilities_SoRemountUmountNsenterAndNewNamespacesFail()
    {
        _h.Env["ANTHROPIC_API_KEY"] = "sk-ant-root-escape-test-0003";
        var pid = await DaemonPidAsync();
        var escaped = Path.Combine(_h.Root, "ROOT-ESCAPE");

        var (_, results, _) = await RunScriptAsync("root",
            Tool("Bash", new { command = "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status" }),
            Tool("Bash", new { command = $"mount -o remount,rw / && touch {escaped}" }),
            Tool("Bash", new { command = $"umount -l /proc && tr '\\0' '\\n' < /proc/{pid}/environ | grep -c ANTHROPIC" }),
            Tool("Bash", new { command = $"umount -l /proc; nsenter -t {pid} -n -- true && echo ENTERED" }),
            Tool("Bash", new { command = "unshare -Ur true && echo NEW-USER-NAMESPACE" }),
            Tool("Bash", new { command = "mount -t tmpfs none /var/tmp && echo MOUNTED" }),
            Tool("Bash", new { command = "touch owned && chown 65534 owned && echo CHOWNED" }),
            Tool("Bash", new { command = "mknod disk b 8 0 && echo MKNOD" }),
            Tool("Bash", new { command = "chroot / true && echo CHROOTED" }));

        Assert.Equal("CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1", results[0].Output);
        AssertBlocked(results[1], "mount");
        Assert.False(File.Exists(escaped), "root in the sandbox remounted / read-write");
        AssertBlocked(results[2], "umount");
        AssertBlocked(results[3], "nsenter");
        Assert.DoesNotContain("ENTERED", results[3].Output, StringComparison.Ordinal);
        AssertBlocked(results[4], "unshare");
        AssertBlocked(results[5], "mount");
        AssertBlocked(results[6], "chown: changing ownership of 'owned'"); // CAP_CHOWN (and no other uid in the user namespace)
        AssertBlocked(results[7], "Operation not permitted"); // CAP_MKNOD
        AssertBlocked(results[8], "Operation not permitted"); // CAP_SYS_CHROOT
    }

    [Fact]
    public async Task SetuidBits_GainNothingInside_AreClearedAfterTheCommand_AndAreNeverCommitted()
    {
        var (done, results, _) = await RunScriptAsync("setuid",
            Tool("Bash", new { command = "cp /bin/cat scat && chmod 4755 scat && mkdir -p bin && cp /bin/sh bin/ssh && chmod 6755 bin/ssh && stat -c '%A %n' scat bin/ssh && ./scat /proc/self/status | grep -E '^CapEff' && findmnt -no OPTIONS -T . | tr ',' '\\n' | grep -x nosuid" }),
            Tool("Bash", new { command = "stat -c '%A %n' scat bin/ssh" }));

        Assert.Equal(
            "-rwsr-xr-x scat\n-rwsr-sr-x bin/ssh\nCapEff:\t0000000000000000\nnosuid\n"
            + "Cleared the setuid/setgid bit of bin/ssh, scat: files in the worktree may not carry them.", results[0].Output);
        Assert.Equal("-rwxr-xr-x scat\n-rwxr-xr-x bin/ssh", results[1].Output);
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(Path.Combine(done.Worktree, "scat")) & (UnixFileMode.SetUser | UnixFileMode.SetGroup));
        var tree = _h.Git("ls-tree", "-r", done.Branch, "scat", "bin/ssh").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["100755", "100755"], tree.Select(line => line.Split(' ')[0]));
    }

    [Fact]
    public async Task Credentials_InTheHomeFolder_AndTheSystemsPasswordFile_AreHidden_ButOtherDotfilesAreReadable()
    {
        string[] files =
        [
            ".ssh/id_ed25519", ".aws/credentials", ".netrc", ".git-credentials", ".docker/config.json", ".kube/config",
            ".config/gh/hosts.yml", ".config/gcloud/credentials.db", ".azure/msal_token_cache.json", ".gnupg/private-keys-v1.d/k.key",
            ".password-store/bank.gpg", ".local/share/keyrings/login.keyring", ".config/git/credentials", ".pypirc",
            ".claude/.credentials.json", ".cargo/credentials.toml",
        ];
        foreach (var file in files)
        {
            var path = Path.Combine(_h.Home, file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, $"CREDENTIAL-MARKER {file}\n");
        }

        File.WriteAllText(Path.Combine(_h.Home, ".gitconfig"), "[user]\n\tname = Dotfile Reader\n");
        var database = Path.Combine(_h.OffloadHome, "data", "offload.db");

        var (_, results, journal) = await RunScriptAsync("credentials",
            Tool("Bash", new { command = "cd ~ && cat " + string.Join(' ', files) }),
            Tool("Bash", new { command = "find ~/.ssh ~/.aws ~/.gnupg ~/.kube ~/.config/gh ~/.password-store -mindepth 1 | wc -l" }),
            Tool("Bash", new { command = "grep -r 'CREDENTIAL-MARK[E]R' ~ ; echo searched" }),
            Tool("Bash", new { command = "wc -c < /etc/shadow" }),
            Tool("Bash", new { command = $"wc -c < {database}" }),
            Tool("Bash", new { command = "git config --global user.name" }));

        AssertBlocked(results[0], "Permission denied");
        Assert.Equal("0", results[1].Output);
        Assert.EndsWith("searched", results[2].Output, StringComparison.Ordinal);
        AssertBlocked(results[3], "Permission denied");
        AssertBlocked(results[4], "No such file or directory");
        Assert.Equal("Dotfile Reader", results[5].Output);
        Assert.DoesNotContain("CREDENTIAL-MARKER", journal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Credentials_OpenedInTheUsersConfig_AreReadable_ButARepositoryCannotOpenThem()
    {
        Directory.CreateDirectory(Path.Combine(_h.Home, ".ssh"));
        File.WriteAllText(Path.Combine(_h.Home, ".ssh", "id_ed25519"), "SSH-KEY-MARKER\n");
        File.WriteAllText(Path.Combine(_h.Home, ".ssh", "known_hosts"), "github.com ssh-ed25519 AAAA\n");
        Directory.CreateDirectory(Path.Combine(_h.Home, ".aws"));
        File.WriteAllText(Path.Combine(_h.Home, ".aws", "credentials"), "[default]\nregion = eu-west-1\n");
        UserConfig("""{ "sandbox": { "allowRead": ["~/.aws", "~/.ssh/known_hosts"] } }""");
        Directory.CreateDirectory(Path.Combine(_h.Repo, ".offload"));
        File.WriteAllText(Path.Combine(_h.Repo, ".offload", "config.json"), """{ "sandbox": { "allowRead": ["~/.ssh"] } }""");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "a repository asking for ~/.ssh");

        var (_, results, journal) = await RunScriptAsync("allow-read",
            Tool("Bash", new { command = "cat ~/.aws/credentials ~/.ssh/known_hosts" }),
            Tool("Bash", new { command = "cat ~/.ssh/id_ed25519" }));

        Assert.Equal("[default]\nregion = eu-west-1\ngithub.com ssh-ed25519 AAAA", results[0].Output);
        AssertBlocked(results[1], "No such file or directory");
        Assert.DoesNotContain("SSH-KEY-MARKER", journal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorktreeIncludeValues_ReadByBashOrRead_ReachTheJournalAndTheModelOnlyAsPlaceholders()
    {
        File.WriteAllText(Path.Combine(_h.Repo, ".gitignore"), ".env\n");
        File.WriteAllText(Path.Combine(_h.Repo, ".worktreeinclude"), ".env\n");
        _h.Git("add", "-A");
        _h.Git("commit", "-q", "-m", "env is copied into worktrees");
        File.WriteAllText(Path.Combine(_h.Repo, ".env"),
            "# local settings\nAPI_TOKEN=tok-live-4f9a8b7c6d5e\nexport DATABASE_URL=\"postgres://app:pw-31415926@db/app\"\nDEBUG=1\n");

        var (_, results, journal) = await RunScriptAsync("env-values",
            Tool("Bash", new { command = "cat .env" }),
            Tool("Read", new { file_path = ".env" }),
            Tool("Bash", new { command = "grep -h pw- .env" }));

        Assert.Equal("# local settings\nAPI_TOKEN=[redacted .env:API_TOKEN]\nexport DATABASE_URL=\"[redacted .env:DATABASE_URL]\"\nDEBUG=1", results[0].Output);
        Assert.Contains("API_TOKEN=[redacted .env:API_TOKEN]", results[1].Output, StringComparison.Ordinal);
        Assert.Equal("export DATABASE_URL=\"[redacted .env:DATABASE_URL]\"", results[2].Output);
        Assert.DoesNotContain("tok-live-4f9a8b7c6d5e", journal, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-31415926", journal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ForkBombMemoryHogAndDiskFill_AreEachKilledWithTheReason_WhileAnotherTaskSucceeds()
    {
        UserConfig("""{ "sandbox": { "limits": { "maxProcesses": 64, "maxMemoryMb": 256, "maxDiskMb": 50, "tmpSizeMb": 16 } } }""");
        var pid = await DaemonPidAsync();

        var hog = await _h.RunTaskAsync(_h.Scenario("hog", Scenario(
            Tool("Bash", new { command = ":(){ :|:& };:; sleep 100", timeout = 110_000 }),
            Tool("Bash", new { command = "head -c 1G /dev/zero | tail", timeout = 110_000 }),
            Tool("Bash", new { command = "python3 -c \"x = b'x' * (1 << 30); print(len(x))\"", timeout = 110_000 }),
            Tool("Bash", new { command = "dd if=/dev/zero of=big bs=1M count=200", timeout = 110_000 }),
            Tool("Bash", new { command = "for i in $(seq 1 80); do head -c 1M /dev/zero > part$i; done", timeout = 110_000 }),
            Tool("Bash", new { command = "rm -f big part* && head -c 20M /dev/zero > /tmp/fill", timeout = 110_000 }),
            Tool("Bash", new { command = "echo still-works" }),
            Final("done"))), "hog");
        var other = await _h.RunTaskAsync(_h.Scenario("other", Scenario(
            Tool("Bash", new { command = "seq 1 1000 | wc -l" }),
            Final("done"))), "other");

        var (_, results, _) = await FinishedAsync(hog.Id, 7);
        var (_, otherResults, _) = await FinishedAsync(other.Id, 1);

        AssertBlocked(results[0], "killed: the task's process limit (64) was reached");
        AssertBlocked(results[1], "killed: the task's memory limit (256 MB) was reached");
        AssertBlocked(results[2], "killed: the task's memory limit (256 MB) was reached");
        AssertBlocked(results[3], "killed: the task's disk limit (50 MB) was reached");
        AssertBlocked(results[4], "killed: the task's disk limit (50 MB) was reached");
        AssertBlocked(results[5], "No space left on device");
        Assert.Equal("still-works", results[6].Output);
        Assert.Equal("1000", otherResults[0].Output);

        // Each command's cgroup is gone once the command is (cgroup v1, as on this project's machines).
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup").Select(l => l.Split(':', 3)).Where(l => l[1] is "pids" or "memory"))
        {
            var parent = $"/sys/fs/cgroup/{line[1]}{line[2].TrimEnd('/')}/offload-{pid}";
            Assert.True(Directory.Exists(parent), $"no cgroup for the daemon's commands: {parent}");
            Assert.Empty(Directory.EnumerateDirectories(parent, "cmd-*"));
        }
    }
}
