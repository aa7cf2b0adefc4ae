using Aegis.StandardGen;

// Usage (from anywhere inside the repository):
//   dotnet run --project tools/Aegis.StandardGen                      write src/Aegis.Dicom/Dictionary/*.g.cs
//   dotnet run --project tools/Aegis.StandardGen -- --check           exit 1 if the committed files are stale
//   dotnet run --project tools/Aegis.StandardGen -- --cross-check     PS3.6 vs DCMTK differences
//   dotnet run --project tools/Aegis.StandardGen -- --source-check DIR  committed source/ vs DIR (../shared/dicom-standard)

string root = FindRepositoryRoot();
string sourceDir = Path.Combine(root, "tools", "Aegis.StandardGen", "source");

if (args.Length == 2 && args[0] == "--source-check")
{
    var lines = StandardGenerator.SourceCheck(sourceDir, Path.GetFullPath(args[1]));
    foreach (string line in lines) Console.WriteLine(line);
    return lines.Any(l => l.Contains("DIFFERS", StringComparison.Ordinal)) ? 1 : 0;
}
if (args.Length == 1 && args[0] == "--cross-check")
{
    foreach (string line in StandardGenerator.CrossCheck(sourceDir)) Console.WriteLine(line);
    return 0;
}
bool check = args.Length == 1 && args[0] == "--check";
if (args.Length > 0 && !check)
{
    Console.Error.WriteLine("usage: Aegis.StandardGen [--check | --cross-check | --source-check DIR]");
    return 2;
}

int stale = 0;
foreach (var (relative, content) in StandardGenerator.Generate(sourceDir))
{
    string path = Path.Combine(root, relative);
    string? existing = File.Exists(path) ? File.ReadAllText(path) : null;
    if (existing == content)
    {
        Console.WriteLine($"up to date: {relative}");
        continue;
    }
    if (check)
    {
        Console.Error.WriteLine($"STALE: {relative} differs from what the sources generate; run dotnet run --project tools/Aegis.StandardGen");
        stale++;
        continue;
    }
    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
    File.WriteAllText(path, content);
    Console.WriteLine($"wrote: {relative}");
}
return stale == 0 ? 0 : 1;

static string FindRepositoryRoot()
{
    foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
    {
        for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Aegis.slnx"))) return dir.FullName;
    }
    throw new DirectoryNotFoundException("Aegis.slnx not found above the current directory; run inside the repository");
}
