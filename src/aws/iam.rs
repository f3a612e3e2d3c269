//! IAM's query API, for the one call stripe-ops makes: `SimulatePrincipalPolicy`, a form POST
//! signed by `signed.rs`, its XML answer read with quick-xml.
//!
//! The request and answer shapes are those of the IAM API reference (`SimulatePrincipalPolicy`,
//! query protocol, version 2010-05-08; errors as `ErrorResponse/Error/{Code,Message}`).

use quick_xml::events::Event;
use serde::Serialize;

use super::signed::Signed;

const API_VERSION: &str = "2010-05-08";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// One permission the role needs, with the simulation's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    pub action: &'static str,
    pub resource: String,
    #[serde(skip)]
    pub context: Vec<(&'static str, String)>,
}

/// What IAM answered for one need, as plain data (from `EvaluationResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: String,
    /// The policies whose statements matched (for an explicit deny: the denying ones).
    pub matched: Vec<String>,
    pub missing_context: Vec<String>,
}

/// A client for `SimulatePrincipalPolicy`.
pub struct Iam(pub Signed);

impl Iam {
    /// Asks IAM whether `role` may do what `need` says. `Err` says why the simulation could not
    /// run (no credentials, IAM unreachable or refusing, an answer it cannot read).
    pub async fn simulate(&self, role: &str, need: &Need) -> Result<Answer, String> {
        let partition = role.split(':').nth(1).unwrap_or("aws");
        let (endpoint, signing_region) = global_endpoint(partition)
            .ok_or_else(|| format!("no IAM endpoint known for partition {partition:?}"))?;
        let answer = self
            .0
            .post(
                "iam",
                signing_region,
                endpoint,
                &[("content-type", FORM)],
                form(role, need),
            )
            .await?;
        let status = answer.status;
        match parse(&answer.body) {
            Ok(answer) if status.is_success() => Ok(answer),
            Ok(_) => Err(format!("IAM answered {status}")),
            Err(why) if status.is_success() => Err(why),
            Err(why) => Err(format!("IAM answered {status}: {why}")),
        }
    }
}

/// IAM is global: one endpoint and signing region per partition.
fn global_endpoint(partition: &str) -> Option<(&'static str, &'static str)> {
    match partition {
        "aws" => Some(("https://iam.amazonaws.com", "us-east-1")),
        "aws-cn" => Some(("https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1")),
        "aws-us-gov" => Some(("https://iam.us-gov.amazonaws.com", "us-gov-west-1")),
        _ => None,
    }
}

/// Pure: the query-protocol form of one simulation: one action, one resource, the context.
pub fn form(role: &str, need: &Need) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        ("Action".into(), "SimulatePrincipalPolicy".into()),
        ("Version".into(), API_VERSION.into()),
        ("PolicySourceArn".into(), role.into()),
        ("ActionNames.member.1".into(), need.action.into()),
        ("ResourceArns.member.1".into(), need.resource.clone()),
    ];
    for (i, (key, value)) in need.context.iter().enumerate() {
        let entry = format!("ContextEntries.member.{}", i + 1);
        pairs.push((format!("{entry}.ContextKeyName"), (*key).into()));
        pairs.push((format!("{entry}.ContextKeyValues.member.1"), value.clone()));
        pairs.push((format!("{entry}.ContextKeyType"), "string".into()));
    }
    serde_urlencoded::to_string(pairs).expect("string pairs encode")
}

/// Pure: the evaluation result of a `SimulatePrincipalPolicyResponse` (one action on one
/// resource was asked), or the code and message of an `ErrorResponse` (as `Err`).
pub fn parse(xml: &str) -> Result<Answer, String> {
    // Text is not trimmed piecewise: an entity (`&amp;`) splits it, and the spaces around it
    // belong to the value; each value is trimmed whole.
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut decision = None;
    let (mut matched, mut missing_context) = (Vec::new(), Vec::new());
    let (mut code, mut message) = (None, None);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                text.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap_or(""));
            }
            Ok(Event::End(_)) => {
                let tail: Vec<&str> = path.iter().rev().take(3).map(String::as_str).collect();
                let value = std::mem::take(&mut text).trim().to_owned();
                match tail.as_slice() {
                    ["EvalDecision", "member", "EvaluationResults"] => decision = Some(value),
                    ["SourcePolicyId", "member", "MatchedStatements"] => matched.push(value),
                    ["member", "MissingContextValues", _] => missing_context.push(value),
                    ["Code", "Error", _] => code = Some(value),
                    ["Message", "Error", _] => message = Some(value),
                    _ => {}
                }
                path.pop();
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("IAM's answer is not XML: {e}")),
        }
    }
    match (decision, code) {
        (Some(decision), _) => Ok(Answer {
            decision,
            matched,
            missing_context,
        }),
        (None, Some(code)) => Err(message.map_or(code.clone(), |m| format!("{code}: {m}"))),
        (None, None) => Err("IAM's answer has no evaluation result".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer's shape, as the IAM API reference shows it for `SimulatePrincipalPolicy`.
    const ALLOWED: &str = r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member>
        <MatchedStatements>
          <member>
            <SourcePolicyId>ecs-secrets</SourcePolicyId>
            <SourcePolicyType>IAM Policy</SourcePolicyType>
            <StartPosition><Line>4</Line><Column>5</Column></StartPosition>
            <EndPosition><Line>8</Line><Column>6</Column></EndPosition>
          </member>
        </MatchedStatements>
        <MissingContextValues/>
        <EvalResourceName>arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf</EvalResourceName>
        <EvalDecision>allowed</EvalDecision>
        <EvalActionName>secretsmanager:GetSecretValue</EvalActionName>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>0a1b2c3d</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#;

    const IMPLICIT_WITH_MISSING: &str = r#"<SimulatePrincipalPolicyResponse>
  <SimulatePrincipalPolicyResult>
    <EvaluationResults>
      <member>
        <MatchedStatements/>
        <MissingContextValues>
          <member>aws:SourceVpce</member>
        </MissingContextValues>
        <EvalDecision>implicitDeny</EvalDecision>
        <EvalActionName>kms:Decrypt</EvalActionName>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
</SimulatePrincipalPolicyResponse>"#;

    const DENIED_TO_SIMULATE: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:SimulatePrincipalPolicy on resource: role exec &amp; more</Message>
  </Error>
  <RequestId>4d5e6f</RequestId>
</ErrorResponse>"#;

    #[test]
    fn an_allowed_answer_names_the_matching_policy() {
        let a = parse(ALLOWED).unwrap();
        assert_eq!(a.decision, "allowed");
        assert_eq!(a.matched, ["ecs-secrets"]);
        assert!(a.missing_context.is_empty());
    }

    #[test]
    fn a_deny_with_missing_context_says_which() {
        let a = parse(IMPLICIT_WITH_MISSING).unwrap();
        assert_eq!(a.decision, "implicitDeny");
        assert_eq!(a.missing_context, ["aws:SourceVpce"]);
        assert!(a.matched.is_empty());
    }

    #[test]
    fn an_error_answer_is_why_it_could_not_run() {
        let e = parse(DENIED_TO_SIMULATE).unwrap_err();
        assert!(e.starts_with("AccessDenied: User:"), "{e}");
        assert!(e.ends_with("role exec & more"), "{e}");
        assert!(parse("<html>500</html>").is_err());
        assert!(parse("not xml <").is_err());
    }

    #[test]
    fn the_form_is_the_query_protocol_of_one_simulation() {
        let need = Need {
            action: "kms:Decrypt",
            resource: "arn:aws:kms:us-east-1:1:key/k".into(),
            context: vec![(
                "kms:viaservice",
                "secretsmanager.us-east-1.amazonaws.com".into(),
            )],
        };
        let f = form("arn:aws:iam::1:role/exec", &need);
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&f).unwrap();
        let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("SimulatePrincipalPolicy"));
        assert_eq!(get("Version"), Some("2010-05-08"));
        assert_eq!(get("PolicySourceArn"), Some("arn:aws:iam::1:role/exec"));
        assert_eq!(get("ActionNames.member.1"), Some("kms:Decrypt"));
        assert_eq!(
            get("ContextEntries.member.1.ContextKeyName"),
            Some("kms:viaservice")
        );
        assert_eq!(
            get("ContextEntries.member.1.ContextKeyType"),
            Some("string")
        );
        assert_eq!(global_endpoint("aws-cn").unwrap().1, "cn-north-1");
        assert!(global_endpoint("aws-iso").is_none());
    }
}
