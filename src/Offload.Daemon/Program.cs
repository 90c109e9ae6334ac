using System.Runtime.InteropServices;
using Offload.Protocol;
using Offload.Config;
using Offload.Daemon;
using Offload.Simulator;
using Offload.Store;

// offload-daemon run                          the daemon in the foreground (what `offload daemon start` launches)
// offload-daemon sim serve [--scenario S] [--port N]   the Simulator for other clients
// offload-daemon claude-bridge PORT SOCKET -- CLAUDE…   inside a Claude Code sandbox: the model bridge, then Claude Code (ClaudeForwarder)
// Users reach both through `offload daemon run` and `offload sim serve`; exit codes are the CLI's (5: daemon).
const int Ok = 0, Usage = 2, DaemonError = 5, Interrupted = 130;

// The daemon's host handles SIGINT and SIGTERM itself (a graceful stop); the Simulator stops on either.
using var stop = new CancellationTokenSource();
using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

try
{
    return args switch
    {
        ["run"] => await RunDaemonAsync(CancellationToken.None),
        ["sim", "serve", .. var rest] => await ServeSimulatorAsync(rest, stop.Token),
        [Offload.Engines.Claude.ClaudeSandbox.ForwarderMode, var port, var socket, "--", .. var command] when command.Length > 0
            && int.TryParse(port, System.Globalization.CultureInfo.InvariantCulture, out var number)
            => await Offload.Engines.Claude.ClaudeForwarder.RunAsync(number, socket, command, stop.Token),
        _ => UsageError(),
    };
}
catch (OperationCanceledException)
{
    return Interrupted;
}

void Stop(PosixSignalContext context)
{
    if (args is not ["run"])
    {
        context.Cancel = true;
        stop.Cancel();
    }
}

static async Task<int> RunDaemonAsync(CancellationToken cancellationToken)
{
    try
    {
        return await DaemonHost.RunAsync(OffloadPaths.FromEnvironment(), Environment.GetEnvironmentVariable, cancellationToken);
    }
    catch (OffloadException e)
    {
        return Fail(e.Message, e.Hint);
    }
    catch (StoreUnusableException e)
    {
        return Fail(e.Message, null);
    }
    catch (ConfigException e)
    {
        Fail(e.Message, e.Hint);
        return Usage;
    }
    catch (DiskFullException e)
    {
        return Fail($"{e.Message}: the daemon cannot start without room for its database", e.Hint);
    }
}

static async Task<int> ServeSimulatorAsync(string[] args, CancellationToken cancellationToken)
{
    string? name = null;
    var port = 0;
    for (var i = 0; i < args.Length; i++)
    {
        switch (args[i])
        {
            case "--scenario" when i + 1 < args.Length:
                name = args[++i];
                break;
            case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out port):
                i++;
                break;
            default:
                return UsageError();
        }
    }

    Scenario? chosen;
    try
    {
        chosen = name is null ? null : File.Exists(name) ? Scenario.Load(name) : Scenario.Builtin(name);
    }
    catch (Exception e) when (e is KeyNotFoundException or FormatException or IOException or UnauthorizedAccessException)
    {
        Console.Error.WriteLine($"offload: {e.Message}");
        Console.Error.WriteLine("  next: name a builtin scenario or a scenario file (docs/simulator.md describes the format)");
        return Usage;
    }

    await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { Port = port, DefaultScenario = chosen }, cancellationToken);
    Console.Out.WriteLine($"simulator listening on {server.BaseUrl}");
    Console.Out.WriteLine($"  ANTHROPIC_BASE_URL={server.BaseUrl.ToString().TrimEnd('/')}   OpenAI base URL: {server.BaseUrl}v1");
    Console.Out.Flush();
    try
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
    catch (OperationCanceledException)
    {
    }

    return Ok;
}

static int Fail(string message, string? hint)
{
    Console.Error.WriteLine($"offload: {message}");
    if (hint is not null)
    {
        Console.Error.WriteLine($"  next: {hint}");
    }

    return DaemonError;
}

static int UsageError()
{
    Console.Error.WriteLine("offload-daemon: usage: offload-daemon run | offload-daemon sim serve [--scenario S] [--port N]");
    Console.Error.WriteLine("  next: use `offload daemon run` or `offload sim serve`; `offload --help` lists every command");
    return Usage;
}
