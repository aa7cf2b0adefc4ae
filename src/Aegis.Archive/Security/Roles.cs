namespace Aegis.Archive.Security;

/// <summary>What a principal may do. Roles are fixed sets of these (see <see cref="Roles"/>).</summary>
[Flags]
public enum Permission
{
    None = 0,
    /// <summary>Send instances to the archive (C-STORE, STOW-RS).</summary>
    Store = 1 << 0,
    /// <summary>Search the index (C-FIND, QIDO-RS); results are filtered by the read permissions.</summary>
    Query = 1 << 1,
    /// <summary>Take instances out (C-MOVE, C-GET, WADO); filtered by the read permissions.</summary>
    Retrieve = 1 << 2,
    /// <summary>Read every study.</summary>
    ReadAll = 1 << 3,
    /// <summary>Read only studies shared with the user or labelled for one of the user's groups.</summary>
    ReadShared = 1 << 4,
    /// <summary>Read de-identified data only.</summary>
    ReadDeidentified = 1 << 5,
    /// <summary>Read the audit trail.</summary>
    ReadAudit = 1 << 6,
    /// <summary>Configuration, users, AEs.</summary>
    Admin = 1 << 7,
}

/// <summary>The seven roles of issue 5; spelled in lower case on the command line and in the database.</summary>
public enum Role
{
    Admin,
    Radiologist,
    Technologist,
    Referrer,
    Researcher,
    Auditor,
    Modality,
}

/// <summary>DIMSE services an association may use (the AE registry's --allow list, or a role mapped to services).</summary>
[Flags]
public enum DimseServices
{
    None = 0,
    Echo = 1 << 0,
    Store = 1 << 1,
    Find = 1 << 2,
    Move = 1 << 3,
    Get = 1 << 4,
    All = Echo | Store | Find | Move | Get,
}

public static class Roles
{
    /// <summary>The permission set of each role. The admin deliberately has no image access (issue 5).</summary>
    public static Permission PermissionsOf(Role role) => role switch
    {
        Role.Admin => Permission.Admin,
        // Radiologists store what they create while reading: reports, key images, measurements (STOW-RS from the viewer).
        Role.Radiologist => Permission.Store | Permission.Query | Permission.Retrieve | Permission.ReadAll,
        Role.Technologist => Permission.Store | Permission.Query | Permission.Retrieve | Permission.ReadAll,
        Role.Referrer => Permission.Query | Permission.Retrieve | Permission.ReadShared,
        Role.Researcher => Permission.Query | Permission.Retrieve | Permission.ReadDeidentified,
        Role.Auditor => Permission.ReadAudit,
        Role.Modality => Permission.Store,
        _ => Permission.None,
    };

    /// <summary>
    /// The DIMSE services a user of this role may use on an association. C-ECHO is granted to every
    /// authenticated role (it reveals nothing). Query maps to C-FIND, Retrieve to C-MOVE and C-GET.
    /// </summary>
    public static DimseServices DimseServicesOf(Role role)
    {
        var p = PermissionsOf(role);
        var s = DimseServices.Echo;
        if (p.HasFlag(Permission.Store)) s |= DimseServices.Store;
        if (p.HasFlag(Permission.Query)) s |= DimseServices.Find;
        if (p.HasFlag(Permission.Retrieve)) s |= DimseServices.Move | DimseServices.Get;
        return s;
    }

    public static string ToName(Role role) => role.ToString().ToLowerInvariant();

    public static bool TryParse(string? text, out Role role)
    {
        role = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        foreach (var r in Enum.GetValues<Role>())
        {
            if (string.Equals(ToName(r), text.Trim(), StringComparison.OrdinalIgnoreCase)) { role = r; return true; }
        }
        return false;
    }

    public static Role Parse(string text) =>
        TryParse(text, out var r) ? r : throw new ArgumentException($"unknown role '{text}' (admin, radiologist, technologist, referrer, researcher, auditor, modality)", nameof(text));

    /// <summary>Parses "echo,store,find,move,get" (case-insensitive; "all" for every service).</summary>
    public static DimseServices ParseServices(string? list)
    {
        if (string.IsNullOrWhiteSpace(list)) return DimseServices.None;
        var s = DimseServices.None;
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            s |= part.ToLowerInvariant() switch
            {
                "echo" => DimseServices.Echo,
                "store" => DimseServices.Store,
                "find" => DimseServices.Find,
                "move" => DimseServices.Move,
                "get" => DimseServices.Get,
                "all" => DimseServices.All,
                _ => throw new ArgumentException($"unknown DIMSE service '{part}' (echo, store, find, move, get)", nameof(list)),
            };
        }
        return s;
    }

    public static string FormatServices(DimseServices s)
    {
        var parts = new List<string>();
        if (s.HasFlag(DimseServices.Echo)) parts.Add("echo");
        if (s.HasFlag(DimseServices.Store)) parts.Add("store");
        if (s.HasFlag(DimseServices.Find)) parts.Add("find");
        if (s.HasFlag(DimseServices.Move)) parts.Add("move");
        if (s.HasFlag(DimseServices.Get)) parts.Add("get");
        return string.Join(',', parts);
    }
}
