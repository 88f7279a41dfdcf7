"""Ship log lines (stdin) to a CloudWatch Logs group, one event per message, as RDS does."""
import datetime as dt
import sys

import boto3

group, stream, region, endpoint = sys.argv[1:5]
logs = boto3.client("logs", region_name=region, endpoint_url=endpoint)
if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
    logs.create_log_group(logGroupName=group)
logs.create_log_stream(logGroupName=group, logStreamName=stream)
events, current = [], None
for line in sys.stdin.read().splitlines():
    if line.startswith("\t") and current is not None:  # RDS keeps continuations in the event
        current["message"] += "\n" + line
        continue
    stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=dt.timezone.utc)
    current = {"timestamp": int(stamp.timestamp() * 1000), "message": line}
    events.append(current)
for start in range(0, len(events), 500):
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=events[start:start + 500])
print(len(events))
