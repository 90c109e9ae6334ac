using System.CommandLine;
using Offload.Simulator;

namespace Offload.Cli.Commands;

public static class SimCommand
{
    public static Command Create()
    {
        var scenario = new Option<string?>("--scenario") { Description = "A scenario file, or a builtin name (" + string.Join(", ", Scenario.BuiltinNames) + "); default: the request's model names it" };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 (0: any free port)", DefaultValueFactory = _ => 0 };
        var serve = new Command("serve", "Serve the scripted model server (Anthropic Messages + OpenAI Chat Completions) for other clients") { scenario, port };
        serve.SetAction(async (parse, ct) =>
        {
            var name = parse.GetValue(scenario);
            Scenario? chosen = name is null ? null : File.Exists(name) ? Scenario.Load(name) : Scenario.Builtin(name);
            await using var server = await SimulatorServer.StartAsync(new SimulatorOptions { Port = parse.GetValue(port), DefaultScenario = chosen }, ct);
            Console.Out.WriteLine($"simulator listening on {server.BaseUrl}");
            Console.Out.WriteLine($"  ANTHROPIC_BASE_URL={server.BaseUrl.ToString().TrimEnd('/')}   OpenAI base URL: {server.BaseUrl}v1");
            Console.Out.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
            }

            return ExitCodes.Ok;
        });
        return new Command("sim", "The model Simulator used by the tests and by --model sim:NAME") { serve };
    }
}
