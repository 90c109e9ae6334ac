using System.CommandLine;

namespace Offload.Cli.Commands;

public static class DaemonCommand
{
    public static Command Create()
    {
        var command = new Command("daemon", "Manage the background daemon (other commands start it when needed)");

        var json = Common.JsonOption();
        var status = new Command("status", "Is the daemon running: pid, version, socket, tasks") { json };
        status.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var s = await client.TryStatusAsync(ct);
            if (parse.GetValue(json))
            {
                Output.Json(s is null
                    ? new DaemonStatusJson(false, client.Paths.Socket)
                    : new DaemonStatusJson(true, s.Socket, s.Pid, s.Version, s.DataDir, s.StartedAt, s.Running, s.MaxParallel, s.Sandbox));
            }
            else
            {
                Console.Out.WriteLine(s is null
                    ? $"daemon not running (socket {client.Paths.Socket}); any offload command starts it"
                    : $"daemon running · pid {s.Pid} · version {s.Version} · socket {s.Socket} · {s.Running} running (max {s.MaxParallel}) · sandbox {(s.Sandbox ? "on" : "off")}");
            }

            return s is null ? ExitCodes.Daemon : ExitCodes.Ok;
        }, ensureDaemon: false, ct));

        var start = new Command("start", "Start the daemon in the background if it is not running");
        start.SetAction(async (_, ct) => await Common.WithClientAsync(async client =>
        {
            var s = await client.EnsureDaemonAsync(ct);
            Console.Out.WriteLine($"daemon running · pid {s.Pid} · socket {s.Socket}");
            return ExitCodes.Ok;
        }, ensureDaemon: false, ct));

        var stop = new Command("stop", "Stop the daemon: running tasks stop at a safe point and resume at its next start");
        stop.SetAction(async (_, ct) => await Common.WithClientAsync(async client =>
        {
            if (await client.TryStatusAsync(ct) is not { } s)
            {
                Console.Out.WriteLine("daemon not running");
                return ExitCodes.Ok;
            }

            await client.PostAsync("v1/daemon/stop", ct);
            var deadline = DateTime.UtcNow.AddSeconds(40);
            while (DateTime.UtcNow < deadline && ProcessAlive(s.Pid))
            {
                await Task.Delay(20, ct);
            }

            Console.Out.WriteLine(ProcessAlive(s.Pid) ? $"daemon (pid {s.Pid}) is still stopping" : "daemon stopped");
            return ExitCodes.Ok;
        }, ensureDaemon: false, ct));

        var run = new Command("run", "Run the daemon in the foreground (what `start` launches)");
        run.SetAction(_ => DaemonProgram.Exec(["run"]));

        command.Subcommands.Add(status);
        command.Subcommands.Add(start);
        command.Subcommands.Add(stop);
        command.Subcommands.Add(run);
        return command;
    }

    private static bool ProcessAlive(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z", StringComparison.Ordinal);
}

/// <summary><c>offload daemon status --json</c>; only <c>running</c> and <c>socket</c> when no daemon answers.</summary>
public sealed record DaemonStatusJson(
    bool Running, string Socket, int? Pid = null, string? Version = null, string? DataDir = null, DateTimeOffset? StartedAt = null,
    int? RunningTasks = null, int? MaxParallel = null, bool? Sandbox = null);
