using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Offload.Agent;
using Offload.Protocol;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;
using static Offload.Tests.Resilience.ResilienceKit;

namespace Offload.Tests.Resilience;

/// <summary>
/// OFFLOAD_HOME on a small tmpfs of its own, filled to the last page by a file; deleting the file gives the space back.
/// A full disk is said as such ("disk full at PATH", exit 5), keeps every journal intact, and the daemon goes on by
/// itself once there is room: the run whose write failed resumes from its journal, as after a crash.
/// </summary>
public sealed class DiskFullTests : IAsyncLifetime
{
    private readonly OffloadHarness _h = new("/var/tmp");
    private string Filler => Path.Combine(_h.OffloadHome, "filler");
    private string Gate => Path.Combine(_h.Root, "gate");
    private string DataDir => Path.Combine(_h.OffloadHome, "data");

    public async Task InitializeAsync()
    {
        if (!DiskFullFactAttribute.IsRoot)
        {
            return;
        }

        Directory.CreateDirectory(_h.OffloadHome);
        await RunAsync("mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", _h.OffloadHome);
        // The gate lives outside the worktree: run without bwrap, and allow Bash outright (as CrashRecoveryTests do).
        _h.Env["OFFLOAD_BWRAP"] = Path.Combine(_h.Root, "no-bwrap");
        _h.WriteConfig(new { maxParallel = 1, permissions = new { allow = new[] { "Bash" } } });
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync(); // stops the daemon; the folder it cannot delete is the mount point
        if (DiskFullFactAttribute.IsRoot)
        {
            await RunAsync("umount", "-l", _h.OffloadHome);
        }

        if (Directory.Exists(_h.Root))
        {
            Directory.Delete(_h.Root, recursive: true);
        }
    }

    [DiskFullFact]
    public async Task ADiskThatFillsDuringARun_IsSaidAsSuch_KeepsEveryJournal_AndTheRunGoesOnByItselfWhenSpaceReturns()
    {
        var earlier = await _h.RunTaskAsync(_h.Scenario("earlier", Scenario(Tool("Bash", new { command = "echo earlier > earlier.txt" }), Final("earlier done"))), "an earlier task");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(earlier.Id)).Status);
        var earlierJournal = JsonSerializer.Serialize(await _h.EventsAsync(earlier.Id), OffloadJson.Options);

        var running = await _h.RunTaskAsync(_h.Scenario("running", Scenario(
            Tool("Bash", new { command = $"while [ ! -e '{Gate}' ]; do sleep 0.05; done; echo through" }),
            Final("done after the disk was full"))), "runs while the disk fills");
        var queued = await _h.RunTaskAsync(_h.Scenario("queued", Scenario(Final("queued one done"))), "queued behind it");
        Assert.NotNull(await _h.NextEventAsync([running.Id], e => e is ToolCalled, TimeSpan.FromSeconds(30), includePast: true));

        Fill();
        File.WriteAllText(Gate, "");
        await WaitUntilAsync(() => !AnyProcessMentions(Gate), TimeSpan.FromSeconds(30), "the tool call did not end"); // its result is written next

        // while the disk is full: a new task is refused with the reason, the running one is still running, reads work
        var refused = await _h.OffloadAsync("run", "--model", "sim:echo", "no room for me");
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.StartsWith($"offload: disk full at {DataDir}", refused.Stderr);
        Assert.Contains("df -h", refused.Stderr);
        Assert.Equal(OffloadTaskStatus.Running, (await _h.ShowAsync(running.Id)).Status);
        Assert.Equal(OffloadTaskStatus.Queued, (await _h.ShowAsync(queued.Id)).Status);

        File.Delete(Filler);

        var done = await EndedAsync(running.Id);
        Assert.True(done.Status == OffloadTaskStatus.Succeeded && done.Summary == "done after the disk was full", $"{done.Status.ToWire()}: {done.Error}");
        var journal = await _h.EventsAsync(running.Id);
        AssertGapless(journal, "the task that met the full disk");
        Assert.Contains(journal, e => e is ToolResulted { Output: Conversation.InterruptedNote }); // its result could not be stored
        Assert.Contains(journal, e => e is StatusChanged { Reason: { } r } && r.StartsWith($"resuming: the store can write again (it could not: disk full at {DataDir})", StringComparison.Ordinal));
        var after = await EndedAsync(queued.Id);
        Assert.Equal(OffloadTaskStatus.Succeeded, after.Status);
        Assert.Equal(earlierJournal, JsonSerializer.Serialize(await _h.EventsAsync(earlier.Id), OffloadJson.Options));
        var all = await _h.OffloadAsync("ls", "--all", "--json");
        Assert.Equal(3, JsonSerializer.Deserialize<JsonElement>(all.Stdout).GetArrayLength());
        Assert.Contains("the store writes again", File.ReadAllText(Path.Combine(DataDir, "daemon.log")));
    }

    [DiskFullFact]
    public async Task ADaemonStartingOnAFullDisk_SaysDiskFull_NotThatTheDatabaseIsBad_AndStartsOnceThereIsRoom()
    {
        var task = await _h.RunTaskAsync(_h.Scenario("before", Scenario(Final("stored before"))), "stored before the disk fills");
        Assert.Equal(OffloadTaskStatus.Succeeded, (await _h.WaitAsync(task.Id)).Status);
        var journal = JsonSerializer.Serialize(await _h.EventsAsync(task.Id), OffloadJson.Options);
        Assert.Equal(0, (await _h.OffloadAsync("daemon", "stop")).ExitCode);

        Fill();
        var list = await _h.OffloadAsync("ls");

        Assert.True(list.ExitCode == 5, list.ToString());
        Assert.StartsWith($"offload: the daemon could not start: disk full at {DataDir}", list.Stderr);
        Assert.DoesNotContain("Move it aside", list.Stderr);
        Assert.DoesNotContain("SQLite Error", list.Stderr);

        File.Delete(Filler);
        var again = await _h.OffloadAsync("ls", "--all");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(journal, JsonSerializer.Serialize(await _h.EventsAsync(task.Id), OffloadJson.Options));
    }

    /// <summary>Writes <see cref="Filler"/> until the filesystem has not one page left.</summary>
    private void Fill()
    {
        using var file = new FileStream(Filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        var chunk = new byte[1024 * 1024];
        foreach (var size in new[] { chunk.Length, 4096 })
        {
            try
            {
                while (true)
                {
                    file.Write(chunk, 0, size);
                }
            }
            catch (IOException)
            {
            }
        }

        Assert.True(new DriveInfo(_h.OffloadHome).AvailableFreeSpace < 4096);
    }

    private static bool AnyProcessMentions(string text) => Directory.EnumerateDirectories("/proc").Any(dir =>
    {
        try
        {
            return int.TryParse(Path.GetFileName(dir), out _) && File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(text, StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    });

    private async Task<TaskInfo> EndedAsync(long id)
    {
        var end = await _h.NextEventAsync([id], e => e is StatusChanged s && s.To.IsFinal(), TimeSpan.FromSeconds(30), includePast: true);
        var task = await _h.ShowAsync(id);
        Assert.True(end is not null, $"task {id} did not end: it is {task.Status.ToWire()}; its journal: " +
            string.Join(", ", (await _h.EventsAsync(id)).Select(e => e is StatusChanged s ? $"{s.To.ToWire()}({s.Reason})" : e.GetType().Name)));
        return task;
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {await stderr}");
    }
}

/// <summary>A fact that mounts a small tmpfs, which needs root; skipped, with the reason, for anyone else.</summary>
public sealed class DiskFullFactAttribute : FactAttribute
{
    public static bool IsRoot => geteuid() == 0;

    public DiskFullFactAttribute()
    {
        if (!IsRoot)
        {
            Skip = "needs root to mount a small tmpfs for OFFLOAD_HOME and fill it (CI runs as root)";
        }
    }

    [DllImport("libc")]
#pragma warning disable SYSLIB1054
    private static extern uint geteuid();
#pragma warning restore SYSLIB1054
}
