<#
.SYNOPSIS
    Run MedServer at boot on Windows, restarted when it fails: a Scheduled Task.

.DESCRIPTION
    Registers the task "MedServer" (Windows' own Task Scheduler, nothing to download).
    It starts at system startup, before anyone logs on, as the given Windows account
    (S4U: no password is stored), and runs this same script with -Run. That runs
    .venv\Scripts\medserver.exe from the MedServer folder and starts it again 10
    seconds after it exits with an error; a clean stop (exit code 0) ends the task.
    Task Scheduler itself retries a start that fails, every minute.

    The console output goes to medserver.log in the data dir; the one before the
    last start is kept as medserver.1.log. The HF_TOKEN comes from .env in the
    MedServer folder (install.bat writes it there, readable by that account only),
    so run the task as the account that ran install.bat, or a dedicated one that
    can read the folder.

    Run it in an elevated PowerShell (Run as administrator), after install.bat:
        powershell -ExecutionPolicy Bypass -File deploy\windows\install-service.ps1 -Model 4
    Remove the task (and the firewall rule):
        powershell -ExecutionPolicy Bypass -File deploy\windows\install-service.ps1 -Uninstall

.PARAMETER Model
    What `medserver -m` serves: 4, 27, 27t, demo or a model folder.
.PARAMETER Port
    The port MedServer listens on; the firewall rule opens it for Domain and Private networks.
.PARAMETER ListenAddress
    The address to bind: 0.0.0.0 serves the LAN; 127.0.0.1 behind a reverse proxy
    (add --behind-proxy to -ExtraArguments then).
.PARAMETER ExtraArguments
    Further medserver flags, e.g. "-q --max-user-streams 2".
.PARAMETER DataDir
    MedServer's data dir (database, uploads) and the log files.
.PARAMETER User
    The Windows account the task runs as (default: the one running this script).
#>
#Requires -Version 5.1
[CmdletBinding()]
param(
    [string]$Model = "4",
    [int]$Port = 8000,
    [string]$ListenAddress = "0.0.0.0",
    [string]$ExtraArguments = "",
    [string]$DataDir = (Join-Path $env:ProgramData "MedServer"),
    [string]$User = "$env:USERDOMAIN\$env:USERNAME",
    [string]$TaskName = "MedServer",
    [switch]$Uninstall,
    [switch]$Run
)

$ErrorActionPreference = "Stop"
$InstallDir = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
$Medserver = Join-Path $InstallDir ".venv\Scripts\medserver.exe"
$Arguments = "-m $Model -ip $ListenAddress -p $Port --data-dir `"$DataDir`" $ExtraArguments".Trim()

if ($Run) {
    # The task's own loop: start MedServer, and start it again when it fails.
    New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
    $log = Join-Path $DataDir "medserver.log"
    while ($true) {
        if (Test-Path $log) { Move-Item -Force $log (Join-Path $DataDir "medserver.1.log") }
        $process = Start-Process -FilePath $Medserver -ArgumentList $Arguments `
            -WorkingDirectory $InstallDir -NoNewWindow -Wait -PassThru `
            -RedirectStandardOutput $log -RedirectStandardError "$log.err"
        if ($process.ExitCode -eq 0) { break }
        Add-Content -Path $log -Value "medserver exited with code $($process.ExitCode); starting it again in 10 s"
        Start-Sleep -Seconds 10
    }
    exit 0
}

$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error "Run this in an elevated PowerShell (Run as administrator): tasks that start at boot need it."
}

if ($Uninstall) {
    if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
        Write-Host "Removed the scheduled task $TaskName."
    } else {
        Write-Host "There is no scheduled task $TaskName."
    }
    Remove-NetFirewallRule -DisplayName $TaskName -ErrorAction SilentlyContinue
    exit 0
}

if (-not (Test-Path $Medserver)) {
    Write-Error "$Medserver is missing: run install.bat in $InstallDir first."
}

New-Item -ItemType Directory -Force -Path $DataDir | Out-Null

$action = New-ScheduledTaskAction -Execute "powershell.exe" -WorkingDirectory $InstallDir `
    -Argument ("-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden " +
        "-File `"$PSCommandPath`" -Run -Model `"$Model`" -Port $Port " +
        "-ListenAddress `"$ListenAddress`" -DataDir `"$DataDir`" -ExtraArguments `"$ExtraArguments`"")
$trigger = New-ScheduledTaskTrigger -AtStartup
$taskPrincipal = New-ScheduledTaskPrincipal -UserId $User -LogonType S4U -RunLevel Limited
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
    -ExecutionTimeLimit ([TimeSpan]::Zero) -MultipleInstances IgnoreNew -StartWhenAvailable `
    -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger `
    -Principal $taskPrincipal -Settings $settings -Force | Out-Null

if ($ListenAddress -ne "127.0.0.1") {
    Remove-NetFirewallRule -DisplayName $TaskName -ErrorAction SilentlyContinue
    New-NetFirewallRule -DisplayName $TaskName -Direction Inbound -Protocol TCP `
        -LocalPort $Port -Action Allow -Profile Domain, Private | Out-Null
}

Start-ScheduledTask -TaskName $TaskName
Write-Host "MedServer runs as the scheduled task $TaskName (as $User), at every boot:"
Write-Host "    $Medserver $Arguments"
Write-Host "Its console output: $(Join-Path $DataDir 'medserver.log')"
Write-Host "Stop / start: Stop-ScheduledTask $TaskName / Start-ScheduledTask $TaskName"
