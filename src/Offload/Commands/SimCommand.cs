using System.CommandLine;

namespace Offload.Cli.Commands;

public static class SimCommand
{
    public static Command Create()
    {
        var scenario = new Option<string?>("--scenario") { Description = "A scenario file, or a builtin name (demo, echo, slow); default: the request's model names it" };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 (0: any free port)", DefaultValueFactory = _ => 0 };
        var serve = new Command("serve", "Serve the scripted model server (Anthropic Messages + OpenAI Chat Completions) for other clients") { scenario, port };
        serve.SetAction(parse =>
        {
            List<string> forwarded = ["sim", "serve", "--port", parse.GetValue(port).ToString(System.Globalization.CultureInfo.InvariantCulture)];
            if (parse.GetValue(scenario) is { } name)
            {
                forwarded.AddRange(["--scenario", name]);
            }

            return DaemonProgram.Exec([.. forwarded]);
        });
        return new Command("sim", "The model Simulator used by the tests and by --model sim:NAME") { serve };
    }
}
