Console.WriteLine("offload");
