"""State machines deployed by moto's CloudFormation, handed to its ASL interpreter.

moto's CloudFormation creates `AWS::StepFunctions::StateMachine` in its plain Step
Functions backend, whose executions never run; with `execute_state_machine` on, the API is
served by the interpreter's backend instead. Each deployed state machine is recreated
there with the same name (hence the same ARN, which the stack's functions already hold),
definition and role, so StartExecution through the API runs it for real.
"""

from __future__ import annotations

from collections.abc import Iterable

from infra_cdk.local.assembly import LOCAL_ACCOUNT, LOCAL_REGION


def hand_to_interpreter(state_machine_arns: Iterable[str]) -> list[str]:
    """Returns the ARNs now executable; raises when a deployed one cannot be found."""
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    deployed = {
        m.arn: m for m in stepfunctions_backends[LOCAL_ACCOUNT][LOCAL_REGION].state_machines
    }
    interpreter = stepfunctions_parser_backends[LOCAL_ACCOUNT][LOCAL_REGION]
    handed = []
    for arn in state_machine_arns:
        machine = deployed.get(arn)
        if machine is None:
            raise LookupError(f"state machine {arn} is not in moto's CloudFormation backend")
        created = interpreter.create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=machine.roleArn,
            loggingConfiguration=machine.loggingConfiguration,  # type: ignore[arg-type]
            tracingConfiguration=machine.tracingConfiguration,  # type: ignore[arg-type]
        )
        if created.arn != arn:  # clients (the API function) were given the deployed ARN
            raise RuntimeError(f"state machine recreated as {created.arn}, expected {arn}")
        handed.append(created.arn)
    return handed
