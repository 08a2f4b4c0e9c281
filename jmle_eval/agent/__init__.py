"""MedAgentBench support: agent tasks in a virtual EHR (a FHIR R4 server), played one reply at a time.

``tasks`` loads the 300 tasks and renders the first message, ``protocol`` reads one model reply as a
GET, a POST or a FINISH, ``episode`` plays a task to its end through two callables (the model and
the FHIR reader), ``fhir`` reads the FHIR server, and ``graders`` applies the paper's rule for each
of the ten task types.
"""
